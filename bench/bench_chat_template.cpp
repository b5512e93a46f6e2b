// bench_chat_template: how fast prompts are rendered by a model's chat template (the Jinja engine)
// and tokenized. Every GSM8K question of --data, as the trainer's prompt [system, user], rendered
// by --template (a tokenizer_config.json or .jinja; default Qwen3's) on one thread, in passes over
// the data; prints renders/s (best of --passes) and, with --tokenizer, render+encode prompts/s.
//   bench_chat_template [--template tests/data/qwen3/tokenizer_config.json] [--data data/gsm8k/test.jsonl]
//                       [--tokenizer tests/data/qwen2.5/tokenizer.json] [--passes 5]
// bench/chat_template.sh runs it beside transformers' apply_chat_template (jinja2) on the same prompts.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "grpo/base/common.h"
#include "grpo/chat/chat_template.h"
#include "grpo/engine/dataset.h"
#include "grpo/tokenizer/tokenizer.h"

using namespace grpo;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string tmpl = "tests/data/qwen3/tokenizer_config.json", data = "data/gsm8k/test.jsonl",
              tok_path = "tests/data/qwen2.5/tokenizer.json";
  int passes = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--template") tmpl = argv[i + 1];
    if (a == "--data") data = argv[i + 1];
    if (a == "--tokenizer") tok_path = argv[i + 1];
    if (a == "--passes") passes = std::stoi(argv[i + 1]);
  }
  try {
    const ChatTemplate chat =
        ends_with(tmpl, ".jinja") ? ChatTemplate(read_file(tmpl), "", tmpl, {}, {}) : load_chat_template(tmpl.substr(0, tmpl.rfind('/')));
    std::vector<std::string> questions;
    std::ifstream in(data);
    for (std::string line; std::getline(in, line);) questions.push_back(nlohmann::json::parse(line)["question"].get<std::string>());
    const std::string system = "You are a helpful assistant. Solve the math problem step by step.";
    double best = 0;
    size_t bytes = 0;
    for (int p = 0; p < passes; ++p) {
      const auto t0 = Clock::now();
      bytes = 0;
      for (const std::string& q : questions) bytes += chat.render(prompt_messages(system, q), true).s.size();
      best = std::max(best, questions.size() / std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::printf("template %s: %zu prompts (%.0f bytes each), renders/s %.0f (best of %d passes, 1 thread)\n", chat.source().c_str(),
                questions.size(), double(bytes) / questions.size(), best, passes);
    auto tok = load_tokenizer(tok_path);
    double best_tok = 0;
    for (int p = 0; p < passes; ++p) {
      const auto t0 = Clock::now();
      for (const std::string& q : questions) tokenize_prompt(*tok, chat, system, q, 1 << 20);
      best_tok = std::max(best_tok, questions.size() / std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::printf("render + tokenize (%s): prompts/s %.0f\n", tok_path.c_str(), best_tok);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_chat_template: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
