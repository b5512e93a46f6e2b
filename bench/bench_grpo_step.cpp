// bench_grpo_step: whole GRPO steps as grpo_train runs them (GSM8K prompts through the real Qwen2.5
// tokenizer, B prompts x G samples, rewards, advantages, micro-batched PPO update, AdamW over fp32
// master weights when the model is bf16), split into rollout and update, with each step's peak
// memory. Random weights rarely emit an end-of-turn id, so completions run to --new tokens: the
// worst case of a real step at that length.
//   bench_grpo_step (--model DIR | --config JSON) [--device auto] [--dtype auto] [--prompts 16]
//                   [--group 8] [--new 256] [--micro 16] [--checkpointing 1] [--decode-mode eager]
//                   [--attention eager] [--beta 0] [--lora-rank 0] [--steps 3]
//                   [--tokenizer tests/data/qwen2.5] [--data data/gsm8k/train.jsonl]
// --lora-rank r > 0 trains adapters on every projection (alpha 2r) over the frozen base, as
// grpo_train with lora_rank: the peak memory of LoRA on a model whose full fine-tuning does not fit.
#include <chrono>
#include <cstdio>

#include "bench_common.h"
#include "grpo/step/grpo_step.h"

using namespace grpo;
using namespace grpo::bench;

int main(int argc, char** argv) {
  return bench_main("bench_grpo_step", argc, argv, [](const Args& a, BenchModel& b) {
    auto tok = load_tokenizer(a.str("tokenizer", "tests/data/qwen2.5"));
    SpecialIds special;
    special.eos = {151645, 151643};  // Qwen2.5: <|im_end|>, <|endoftext|>
    special.pad = 151643;
    PromptDataset data(a.str("data", "data/gsm8k/train.jsonl"));
    TrainConfig cfg;
    cfg.prompts_per_step = static_cast<int>(a.num("prompts", 16));
    cfg.group_size = static_cast<int>(a.num("group", 8));
    cfg.max_new_tokens = static_cast<int>(a.num("new", 256));
    cfg.grad_accum = static_cast<int>(cfg.prompts_per_step * cfg.group_size / std::max<int64_t>(1, a.num("micro", 16)));
    cfg.gradient_checkpointing = a.num("checkpointing", 1) != 0;
    cfg.decode_mode = parse_decode_mode(a.str("decode-mode", "eager"));
    cfg.attention = parse_attention(a.str("attention", "eager"));
    cfg.beta = a.real("beta", 0.0);
    cfg.learning_rate = 1e-6;
    cfg.lora_rank = static_cast<int>(a.num("lora-rank", 0));
    cfg.lora_alpha = 2.0 * cfg.lora_rank;
    cfg.seed = 7;  // the data order
    const int64_t steps = a.num("steps", 3);
    GrpoState st(cfg, b.model, steps);
    print_model_line(b);
    std::printf(
        "%d prompts x %d samples, %d new tokens, micro-batch %lld (grad_accum %d), checkpointing "
        "%s, decode %s, attention %s, beta %g, %s\n\n",
        cfg.prompts_per_step, cfg.group_size, cfg.max_new_tokens, (long long)a.num("micro", 16), cfg.grad_accum,
        cfg.gradient_checkpointing ? "on" : "off", choice_name(cfg.decode_mode).c_str(), choice_name(cfg.attention).c_str(), cfg.beta,
        cfg.lora_rank > 0 ? ("LoRA r=" + std::to_string(cfg.lora_rank)).c_str() : "full fine-tuning");
    std::printf(
        "| step | rollout s | update s | total s | rollout share | new tokens | rollout tok/s | "
        "update tok/s | peak MiB |\n"
        "|---|---|---|---|---|---|---|---|---|\n");
    for (int64_t s = 0; s < steps; ++s) {
      const StepResult r = train_grpo_step(st, *tok, special, data);  // the product's step, timed by phase
      const StepTiming& t = *r.metrics.timing;
      const double tr = t.rollout_s, tu = t.update_s;
      const double gen = double(r.batch.rollout.decode_tokens);
      std::printf("| %lld%s | %.2f | %.2f | %.2f | %.0f%% | %.0f | %.0f | %.0f | %.0f |\n", (long long)s + 1, s == 0 ? " (warm-up)" : "",
                  tr, tu, tr + tu, 100 * tr / (tr + tu), gen, t.rollout_tokens_per_s, t.update_tokens_per_s, t.peak_mem_mb);
      std::fflush(stdout);
    }
  });
}
