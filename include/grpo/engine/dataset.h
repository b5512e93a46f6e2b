// dataset.h: GSM8K data and prompt construction (homework step 1).
//
// PromptDataset loads JSONL with `question` + `answer` (gold = the number after the last "####",
// thousands separators removed) or `prompt` + `gold`. Order is a deterministic per-epoch
// permutation of (seed, epoch), so a resumed run sees the same stream.
//
// Prompts are rendered by the model's chat template (chat_template.h: ChatML, Qwen3, Llama 3), e.g. ChatML:
//   <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n
//   <|im_start|>assistant\n
// The template's markers are inserted by id; the system prompt and question are encoded as
// plain text, so a question containing "<|im_end|>" cannot break out of its turn.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "grpo/chat/chat_template.h"
#include "grpo/chat/tool_calls.h"
#include "grpo/engine/data_files.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo {

// Shape letters used across the project:
//   B prompts per step, G completions per prompt (group), N = B*G sequences, T time,
//   Tp prompt length, Tc completion length, V vocab, D model width, H heads.

class PromptDataset {
 public:
  // Loads and validates every line; throws Error naming file:line on a bad line. limit 0 = all.
  explicit PromptDataset(const std::string& path, size_t limit = 0);
  // Examples already in memory (tests, benchmarks); `name` stands for the path in messages.
  PromptDataset(std::vector<Example> examples, std::string name);

  size_t size() const { return examples_.size(); }
  const Example& operator[](size_t i) const { return examples_.at(i); }
  const std::string& path() const { return path_; }
  // The golds the run needs (data_files.h, require_golds).
  void require_golds(AnswerMode mode, bool needed) const { grpo::require_golds(examples_, path_, mode, needed); }

  // Permutation of [0, size) for `epoch`, a pure function of (seed, epoch).
  std::vector<size_t> epoch_order(uint64_t seed, int64_t epoch) const;
  // `count` indices from the endless stream epoch 0, epoch 1, ... starting at `position`.
  std::vector<size_t> indices_at(uint64_t seed, int64_t position, size_t count) const;

 private:
  std::string path_;
  std::vector<Example> examples_;
};

// ---------------------------------------------------------------------------------------------
// Prompts

struct PromptIds {
  std::vector<int32_t> ids;
  bool truncated = false;  // the question's head was dropped to fit max_prompt_tokens
};

// The conversation a question becomes: [system (when system_prompt is not empty), user question].
std::vector<ChatMessage> prompt_messages(const std::string& system_prompt, const std::string& question);

// A rendered prompt's ids: special tokens matched in the template's own text only (message text is
// encoded as text). Longer than max_prompt_tokens: the question (the one kQuestionLabel span) keeps
// its last tokens, encoded on its own; the template around it always survives.
PromptIds tokenize_rendered(const Tokenizer& tok, const jinja::Text& text, int max_prompt_tokens);

// A conversation's prompt ids, rendered by `chat` with the generation prompt (tokenize_rendered).
PromptIds tokenize_chat(const Tokenizer& tok, const ChatTemplate& chat, const std::vector<ChatMessage>& messages, int max_prompt_tokens);

// Homework step 1: one question -> prompt ids, the model's chat template over prompt_messages.
PromptIds tokenize_prompt(const Tokenizer& tok, const ChatTemplate& chat, const std::string& system_prompt, const std::string& question,
                          int max_prompt_tokens);

// An example's prompt ids: its conversational messages as given (TRL's format; system_prompt is not
// added), else tokenize_prompt over system_prompt and the question; with tools, the template renders
// them too (its `tools` variable).
PromptIds tokenize_example(const Tokenizer& tok, const ChatTemplate& chat, const std::string& system_prompt, const Example& ex,
                           int max_prompt_tokens, const std::vector<ToolSpec>& tools = {});

struct PromptBatch {
  torch::Tensor input_ids;       // (B, Tp) int64, left-padded with pad_id
  torch::Tensor attention_mask;  // (B, Tp) int64, 1 on real tokens
  std::vector<int64_t> lengths;  // real length of each prompt
};
// Left-pad a batch of prompts so every prompt's last token sits at column Tp-1.
PromptBatch collate_prompts(const std::vector<std::vector<int32_t>>& prompts, int64_t pad_id);

}  // namespace grpo
