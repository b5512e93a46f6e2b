// dataset.cpp: GSM8K JSONL loading, deterministic ordering, ChatML prompts and their tokenization.
#include "grpo/dataset.h"

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

std::string gold_as_written(const std::string& answer) {
  const size_t at = answer.rfind("####");
  return std::string(trim(at == std::string::npos ? std::string_view(answer) : std::string_view(answer).substr(at + 4)));
}

// ---------------------------------------------------------------------------------------------
// Prompts

std::string render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

PromptIds tokenize_prompt(const Tokenizer& tok, const std::string& system_prompt, const std::string& question, int max_prompt_tokens) {
  auto special = [&](const char* s) {
    auto id = tok.token_to_id(s);
    if (!id) throw Error(std::string("tokenizer: no '") + s + "' token; ChatML prompts need it");
    return *id;
  };
  const int32_t im_start = special("<|im_start|>"), im_end = special("<|im_end|>");
  auto text = [&](const std::string& s) { return tok.encode(s, /*match_special=*/false); };

  // Each text span between two specials is encoded as one piece, as HF encodes the rendered
  // template (apply_chat_template): "user\n" + question together, since a question that starts
  // with a newline merges with the role's ("\n\n" is one token).
  std::vector<int32_t> head = {im_start};                                  // <|im_start|>system\n{system}<|im_end|>
  for (int32_t id : text("system\n" + system_prompt)) head.push_back(id);  //   \n<|im_start|>
  head.push_back(im_end);
  for (int32_t id : text("\n")) head.push_back(id);
  head.push_back(im_start);
  std::vector<int32_t> tail = {im_end};  // <|im_end|>\n<|im_start|>assistant\n
  for (int32_t id : text("\n")) tail.push_back(id);
  tail.push_back(im_start);
  for (int32_t id : text("assistant\n")) tail.push_back(id);

  PromptIds out;
  std::vector<int32_t> user = text("user\n" + question);  // user\n{question}
  const std::vector<int32_t> role = text("user\n");
  const size_t fixed = head.size() + role.size() + tail.size();
  if (fixed >= static_cast<size_t>(max_prompt_tokens))
    throw Error("max_prompt_tokens = " + std::to_string(max_prompt_tokens) +
                " leaves no room for the question: the chat template alone takes " + std::to_string(fixed) + " tokens");
  if (head.size() + user.size() + tail.size() > static_cast<size_t>(max_prompt_tokens)) {
    // Too long: the question keeps its last tokens, encoded on its own after the role.
    std::vector<int32_t> q = text(question);
    const size_t room = max_prompt_tokens - fixed;
    user = role;
    if (q.size() > room) out.truncated = true;
    user.insert(user.end(), q.end() - std::min(room, q.size()), q.end());
  }
  out.ids = std::move(head);
  out.ids.insert(out.ids.end(), user.begin(), user.end());
  out.ids.insert(out.ids.end(), tail.begin(), tail.end());
  return out;
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
