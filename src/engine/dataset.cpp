// dataset.cpp: GSM8K JSONL loading, deterministic ordering, chat-rendered prompts and their tokenization.
#include "grpo/engine/dataset.h"

#include <algorithm>
#include <random>

#include "grpo/base/common.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Loading (the lines are parsed in data_files.cpp)

PromptDataset::PromptDataset(const std::string& path, size_t limit)
    : path_(path), examples_(parse_gsm8k_examples(read_file(path), path, limit)) {}

PromptDataset::PromptDataset(std::vector<Example> examples, std::string name) : path_(std::move(name)), examples_(std::move(examples)) {
  if (examples_.empty()) throw Error(path_ + ": no examples");
}

// ---------------------------------------------------------------------------------------------
// Ordering: Fisher-Yates with our own bounded draw, so the order is the same on every platform
// (std::shuffle and std::uniform_int_distribution are implementation-defined).

namespace {

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t r;
  do r = rng();
  while (r >= limit);
  return r % n;
}

}  // namespace

std::vector<size_t> PromptDataset::epoch_order(uint64_t seed, int64_t epoch) const {
  std::vector<size_t> order(examples_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch))));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[uniform_below(rng, i)]);
  return order;
}

std::vector<size_t> PromptDataset::indices_at(uint64_t seed, int64_t position, size_t count) const {
  std::vector<size_t> out;
  const int64_t n = static_cast<int64_t>(examples_.size());
  int64_t epoch = position / n;
  std::vector<size_t> order = epoch_order(seed, epoch);
  for (int64_t p = position; out.size() < count; ++p) {
    if (p / n != epoch) order = epoch_order(seed, epoch = p / n);
    out.push_back(order[p % n]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Prompts

std::vector<ChatMessage> prompt_messages(const std::string& system_prompt, const std::string& question) {
  std::vector<ChatMessage> messages;
  if (!system_prompt.empty()) messages.push_back({"system", system_prompt});
  messages.push_back({"user", question});
  return messages;
}

PromptIds tokenize_rendered(const Tokenizer& tok, const jinja::Text& text, int max_prompt_tokens) {
  PromptIds out;
  out.ids = encode_rendered(tok, text);
  if (out.ids.size() <= static_cast<size_t>(max_prompt_tokens)) return out;
  // The question, encoded on its own, keeps its last tokens; the text around it is encoded as two
  // pieces (the template itself always survives).
  std::vector<jinja::Span> question;
  for (const jinja::Span& sp : text.spans)
    if (sp.label == kQuestionLabel) question.push_back(sp);
  if (question.size() != 1)
    throw Error("max_prompt_tokens = " + std::to_string(max_prompt_tokens) + ": the prompt takes " + std::to_string(out.ids.size()) +
                " tokens and " + (question.empty() ? "has no question to shorten" : "its template writes the question more than once") +
                "; raise max_prompt_tokens");
  const jinja::Text before = text.slice(0, question[0].begin), after = text.slice(question[0].end, text.s.size());
  std::vector<int32_t> head = encode_rendered(tok, before), tail = encode_rendered(tok, after);
  const size_t fixed = head.size() + tail.size();
  if (fixed >= static_cast<size_t>(max_prompt_tokens))
    throw Error("max_prompt_tokens = " + std::to_string(max_prompt_tokens) +
                " leaves no room for the question: the chat template alone takes " + std::to_string(fixed) + " tokens");
  const std::vector<int32_t> q = tok.encode(std::string_view(text.s).substr(question[0].begin, question[0].end - question[0].begin), false);
  const size_t room = static_cast<size_t>(max_prompt_tokens) - fixed;
  out.truncated = q.size() > room;
  out.ids = std::move(head);
  out.ids.insert(out.ids.end(), q.end() - static_cast<int64_t>(std::min(room, q.size())), q.end());
  out.ids.insert(out.ids.end(), tail.begin(), tail.end());
  return out;
}

PromptIds tokenize_chat(const Tokenizer& tok, const ChatTemplate& chat, const std::vector<ChatMessage>& messages, int max_prompt_tokens) {
  return tokenize_rendered(tok, chat.render(messages, /*add_generation_prompt=*/true), max_prompt_tokens);
}

PromptIds tokenize_prompt(const Tokenizer& tok, const ChatTemplate& chat, const std::string& system_prompt, const std::string& question,
                          int max_prompt_tokens) {
  return tokenize_chat(tok, chat, prompt_messages(system_prompt, question), max_prompt_tokens);
}

PromptIds tokenize_example(const Tokenizer& tok, const ChatTemplate& chat, const std::string& system_prompt, const Example& ex,
                           int max_prompt_tokens, const std::vector<ToolSpec>& tools) {
  const std::vector<ChatMessage> messages = ex.messages.empty() ? prompt_messages(system_prompt, ex.question) : ex.messages;
  return tokenize_rendered(tok, chat.render(messages, /*add_generation_prompt=*/true, tools_json(tools)), max_prompt_tokens);
}

PromptBatch collate_prompts(const std::vector<std::vector<int32_t>>& prompts, int64_t pad_id) {
  TORCH_CHECK(!prompts.empty(), "collate_prompts: empty batch");
  const int64_t B = static_cast<int64_t>(prompts.size());
  int64_t Tp = 0;
  for (const auto& p : prompts) Tp = std::max<int64_t>(Tp, static_cast<int64_t>(p.size()));
  PromptBatch out;
  out.input_ids = torch::full({B, Tp}, pad_id, torch::kInt64);  // (B, Tp)
  out.attention_mask = torch::zeros({B, Tp}, torch::kInt64);    // (B, Tp)
  auto ids = out.input_ids.accessor<int64_t, 2>();
  auto mask = out.attention_mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[b];
    const int64_t off = Tp - static_cast<int64_t>(p.size());
    for (size_t t = 0; t < p.size(); ++t) {
      ids[b][off + t] = p[t];
      mask[b][off + t] = 1;
    }
    out.lengths.push_back(static_cast<int64_t>(p.size()));
  }
  return out;
}

}  // namespace grpo
