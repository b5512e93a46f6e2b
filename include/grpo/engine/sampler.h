// sampler.h: batched group sampling with a KV cache (the GRPO rollout engine).
//
// B prompts of different lengths are left-padded and prefilled ONCE; each prompt's KV cache is then
// repeated to its G samples (row n = b*G + g), so the prompt is never recomputed G times. The cache
// is preallocated for the whole rollout and written in place. Every decode step stays on the
// device: sampling, stop detection and masks; the host looks only every `sync_every` steps (to stop
// early and to drop finished rows from the batch).
//
// Randomness is counter-based: the uniform for sequence n at step t is a hash of (seed_n, t)
// computed with integer tensor ops, and the token is drawn by inverse CDF. A sequence's samples
// therefore depend only on its own seed and logits, never on its neighbours, the batch size or
// padding, and CPU and CUDA draw the same numbers.
//
// Filters (HF order): repetition penalty -> temperature -> top-k -> top-p -> min-p. Ids >= the
// tokenizer's size (the embedding has 151936 rows, the tokenizer 151665 ids) are never sampled.
//
// Tool calls (issue 34, SamplingParams::tools). A sequence whose turn ends (a stop id) after it wrote
// the call-end id (Qwen's </tool_call>) pauses instead of finishing. At the next host look (every
// sync_every steps) the paused sequences' turns go to the hook together; its answer for each (the
// tool responses up to the next generation prompt, as ids) is then FORCED through the decode step,
// one id per step, like a sampled id that was not drawn: it enters the KV cache (only the new ids
// are computed), has completion_mask 1 and loss_mask 0, and decoding resumes after it. The other
// sequences keep decoding meanwhile, and every decode mode (compaction, static shapes, CUDA graphs)
// runs unchanged, since a forced id is just the step's input. The steps a paused sequence spends
// waiting for the host's look leave holes in its completion: completion_mask 0, masked out of
// attention, and its position does not advance, so one full forward over the transcript with
// positions_from_mask sees exactly what decoding saw.
// Departure from a multi-token prefill of the response (verl, SkyRL): one id per step costs a
// decode step per response id, but the decoders' fixed shapes and graphs stay as they are.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "grpo/base/device.h"
#include "grpo/engine/decoder.h"
#include "grpo/model/causal_lm.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo {

// How the decode step runs. Eager: shapes follow the cache length (no wasted work, one kernel
// launch per op). Static: fixed shapes, attention over the cache in buckets of `decode_bucket`
// positions with the new position passed as a device tensor, rows in a ladder (below). CudaGraph:
// Static, each (rows, bucket) shape captured once and replayed, which removes the per-op launch
// cost that dominates small-batch GPU decoding; needs a CUDA build and device.
DecodeMode parse_decode_mode(const std::string& s);  // eager | static | cuda_graph
// Throws unless `mode` can run on `device` (cuda_graph: a CUDA build and a CUDA device).
void check_decode_mode(DecodeMode mode, const torch::Device& device);

struct SamplingParams {
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;                // 0 = off
  double min_p = 0.0;               // 0 = off
  double repetition_penalty = 1.0;  // 1 = off
  bool greedy = false;
  int64_t max_new_tokens = 256;
  std::vector<int64_t> stop_ids;  // EOS ids (Qwen: 151645, 151643)
  int64_t n_allowed = 0;          // ids >= n_allowed are never produced (0 = the whole vocabulary)
  uint64_t seed = 0;
  int64_t sync_every = 8;  // host looks at the batch every this many steps
  int64_t pad_id = 0;      // written after a sequence stopped
  DecodeMode decode = DecodeMode::Eager;
  int64_t decode_bucket = 128;  // Static / CudaGraph: attention spans a multiple of this
  // Static / CudaGraph: buffers and graphs to reuse across calls (empty = a fresh one per call).
  std::shared_ptr<StaticDecodeState> decoder;
  // Tool calls (see the top of the file); empty `run` = off.
  struct Tools {
    int64_t call_end_id = -1;     // the id that closes a call (Qwen: </tool_call>)
    int64_t max_turns = 4;        // answered tool turns per sequence; a call past them ends it (not run)
    int64_t max_reply_ids = 256;  // the hook's answers are at most this long (the width reserves room)
    // seqs: the paused sequences (n = b*G + g); turns: each one's ids since its last tool answer
    // (the turn that ended with the call and the stop id). Returns one answer per sequence: the ids
    // to append, or none to end the sequence there.
    std::function<std::vector<std::vector<int32_t>>(const std::vector<int64_t>& seqs, const std::vector<std::vector<int32_t>>& turns)> run;
  } tools;
  // Streaming: called after every step with (sequence index, id) of each row still running; it
  // forces a host sync per step, so it is meant for interactive use, not for rollouts.
  std::function<void(int64_t seq, int64_t id)> on_token;
};

enum class FinishReason : uint8_t { Stop = 0, Length = 1 };

struct Rollout {
  torch::Tensor prompt_ids;       // (N, Tp) int64, left-padded
  torch::Tensor prompt_mask;      // (N, Tp) int64
  torch::Tensor completion_ids;   // (N, Tc) int64, pad after the stop token
  torch::Tensor completion_mask;  // (N, Tc) int64, 1 up to and including the stop token (what is attended)
  // (N, Tc), 1 on the tokens the model chose (what trains); undefined = completion_mask. Tool results
  // appended into a completion (issue 34) are attended context but 0 here: outside the loss, every
  // normaliser, the KL, the entropy and the sampler correction. 0 wherever completion_mask is 0.
  torch::Tensor loss_mask;
  torch::Tensor logprobs;  // (N, Tc) float32, log-prob under the distribution sampled from
  std::vector<FinishReason> finish;
  int64_t prefill_tokens = 0, decode_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  int64_t kv_cache_bytes = 0;
  int64_t compactions = 0;          // times finished rows were dropped from the batch
  int64_t decode_shapes = 0;        // Static / CudaGraph: (rows, attend) step shapes first met in this call
  int64_t graph_captures = 0;       // CudaGraph: graphs captured in this call (one per new shape)
  std::vector<int64_t> tool_turns;  // N with tools: the turns of each sequence that got a tool answer
  double tool_seconds = 0;          // with tools: time in the hook

  // The tokens the model chose, (N, Tc): what trains, what counts as its length.
  const torch::Tensor& own_mask() const { return loss_mask.defined() ? loss_mask : completion_mask; }
};

// What the model directory decides: stop at its EOS ids, pad with its pad id, never produce an id
// the tokenizer cannot decode (the embedding may have more rows than the tokenizer has ids).
void apply_model_limits(SamplingParams& sp, const Tokenizer& tok, const SpecialIds& special, int64_t n_vocab);

// The ids inside each sequence's completion mask (the stop id included), one host transfer.
std::vector<std::vector<int32_t>> completion_token_ids(const Rollout& r);
// Beside them, 1 where the model chose the id (loss_mask), 0 on a tool's answer.
std::vector<std::vector<int32_t>> completion_own_flags(const Rollout& r);

// One seed per sequence (host side): a pure function of (seed, prompt key, sample index).
uint64_t sequence_seed(uint64_t seed, uint64_t prompt_key, int64_t sample);

// The per-step uniforms in [0, 1) for keys (N,) int64 at `step` (float64, on keys' device).
torch::Tensor counter_uniform(const torch::Tensor& keys, int64_t step);
// All steps 0 .. n_steps-1 at once: (N, n_steps), column t == counter_uniform(keys, t). The hash is
// some 60 small integer kernels, so a rollout launches them once instead of once per token.
torch::Tensor counter_uniform_table(const torch::Tensor& keys, int64_t n_steps);

// CTRL / HF repetition penalty: seen ids' logits are divided by `penalty` when positive and
// multiplied by it when negative. logits (N, V) float, seen (N, V) bool.
torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const torch::Tensor& seen, double penalty);

// Filtered, renormalised sampling distribution for logits (N, V) (float32 probs).
torch::Tensor sampling_probs(const torch::Tensor& logits, const SamplingParams& p);
// Draw one id per row from probs (N, V) with uniforms u (N,), by inverse CDF.
torch::Tensor draw_from(const torch::Tensor& probs, const torch::Tensor& u);

// The completion width generate() allocates: max_new_tokens, plus with tools room for each tool
// turn's answer and the steps a sequence may wait for the host's look before it (tool_turns 0: none).
int64_t completion_width(int64_t max_new_tokens, int64_t tool_turns, int64_t max_reply_ids, int64_t sync_every);
int64_t completion_width(const SamplingParams& p);

// Sample G completions for each prompt. prompt_keys (one per prompt, e.g. its dataset index) make
// the draws reproducible per prompt; empty = 0, 1, 2, ...
Rollout generate(CausalLM& model, const std::vector<std::vector<int32_t>>& prompts, int64_t G, const SamplingParams& params,
                 const std::vector<uint64_t>& prompt_keys = {});

}  // namespace grpo
