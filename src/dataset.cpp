// dataset.cpp: GSM8K JSONL loading, deterministic ordering, chat-rendered prompts and their tokenization.
#include "grpo/dataset.h"

#include <algorithm>
#include <random>

#include "grpo/common.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Loading (the lines are parsed in data_files.cpp)

GSM8KDataset::GSM8KDataset(const std::string& path, size_t limit)
    : path_(path), examples_(parse_gsm8k_examples(read_file(path), path, limit)) {}

GSM8KDataset::GSM8KDataset(std::vector<Example> examples, std::string name) : path_(std::move(name)), examples_(std::move(examples)) {
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

std::vector<size_t> GSM8KDataset::epoch_order(uint64_t seed, int64_t epoch) const {
  std::vector<size_t> order(examples_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch))));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[uniform_below(rng, i)]);
  return order;
}

std::vector<size_t> GSM8KDataset::indices_at(uint64_t seed, int64_t position, size_t count) const {
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

PromptIds tokenize_chat(const Tokenizer& tok, const ChatTemplate& chat, const std::vector<ChatMessage>& messages, int max_prompt_tokens) {
  const std::vector<ChatPiece> pieces = chat.render(messages, /*add_generation_prompt=*/true);
  auto marker = [&](const std::string& s) {
    auto id = tok.token_to_id(s);
    if (!id) throw Error("tokenizer: no '" + s + "' token; " + chat_family_name(chat.family) + " prompts need it");
    return *id;
  };
  auto text = [&](const std::string& s) { return tok.encode(s, /*match_special=*/false); };
  // Each run of text between two markers is encoded as one piece, as HF encodes the rendered
  // template (apply_chat_template): "user\n" + question together, since a question that starts
  // with a newline merges with the role's ("\n\n" is one token). split_question: the question
  // encoded apart from the text around it, keeping its last `room` tokens.
  auto encode = [&](bool split_question, size_t room, bool* truncated) {
    std::vector<int32_t> ids;
    std::string run;
    auto flush = [&] {
      for (int32_t id : text(run)) ids.push_back(id);
      run.clear();
    };
    for (const ChatPiece& p : pieces) {
      if (p.kind == ChatPiece::Marker) {
        flush();
        ids.push_back(marker(p.text));
      } else if (p.kind == ChatPiece::Question && split_question) {
        flush();
        std::vector<int32_t> q = text(p.text);
        if (q.size() > room) *truncated = true;
        ids.insert(ids.end(), q.end() - std::min(room, q.size()), q.end());
      } else {
        run += p.text;
      }
    }
    flush();
    return ids;
  };
  PromptIds out;
  out.ids = encode(false, 0, nullptr);
  if (out.ids.size() <= static_cast<size_t>(max_prompt_tokens)) return out;
  const size_t fixed = encode(true, 0, &out.truncated).size();
  if (fixed >= static_cast<size_t>(max_prompt_tokens))
    throw Error("max_prompt_tokens = " + std::to_string(max_prompt_tokens) +
                " leaves no room for the question: the chat template alone takes " + std::to_string(fixed) + " tokens");
  out.truncated = false;
  out.ids = encode(true, max_prompt_tokens - fixed, &out.truncated);
  return out;
}

PromptIds tokenize_prompt(const Tokenizer& tok, const ChatTemplate& chat, const std::string& system_prompt, const std::string& question,
                          int max_prompt_tokens) {
  return tokenize_chat(tok, chat, prompt_messages(system_prompt, question), max_prompt_tokens);
}

namespace {

PromptIds tokenize_tool_prompt(const Tokenizer& tok, const ChatTemplate& chat, const std::vector<ChatMessage>& messages,
                               const std::vector<ToolSpec>& tools, int max_prompt_tokens) {
  std::vector<ToolChatMessage> tm;
  for (const auto& m : messages) tm.push_back({m.role, m.content, {}});
  PromptIds out;
  for (;;) {
    out.ids = tok.encode(render_tool_conversation(chat, tm, tools, /*add_generation_prompt=*/true), /*match_special=*/true);
    const int64_t excess = static_cast<int64_t>(out.ids.size()) - max_prompt_tokens;
    auto user = std::find_if(tm.rbegin(), tm.rend(), [](const ToolChatMessage& m) { return m.role == "user"; });
    if (excess <= 0) return out;
    if (user == tm.rend() || user->content.empty())
      throw Error("max_prompt_tokens = " + std::to_string(max_prompt_tokens) +
                  " leaves no room for the question after the tools' system turn (" + std::to_string(out.ids.size()) +
                  " tokens without it); raise it");
    // Drop the question's first tokens (at least one per round), then render again.
    auto q = tok.encode(user->content, /*match_special=*/false);
    const size_t drop = std::min(q.size(), static_cast<size_t>(std::max<int64_t>(1, excess)));
    user->content = tok.decode(std::vector<int32_t>(q.begin() + static_cast<int64_t>(drop), q.end()));
    out.truncated = true;
  }
}

}  // namespace

PromptIds tokenize_example(const Tokenizer& tok, const ChatTemplate& chat, const std::string& system_prompt, const Example& ex,
                           int max_prompt_tokens, const std::vector<ToolSpec>& tools) {
  if (!tools.empty())
    return tokenize_tool_prompt(tok, chat, ex.messages.empty() ? prompt_messages(system_prompt, ex.question) : ex.messages, tools,
                                max_prompt_tokens);
  if (ex.messages.empty()) return tokenize_prompt(tok, chat, system_prompt, ex.question, max_prompt_tokens);
  return tokenize_chat(tok, chat, ex.messages, max_prompt_tokens);
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
