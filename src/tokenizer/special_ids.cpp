// special_ids.cpp: a model directory's special ids (BOS, EOS, pad) from its tokenizer_config.json,
// config.json and generation_config.json, its chat template, and the checks that the tokenizer
// belongs to the model.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "grpo/base/common.h"
#include "grpo/tokenizer/tokenizer.h"

namespace grpo {

using json = nlohmann::json;

namespace {

json read_json_if_exists(const std::string& path) {
  return file_exists(path) ? parse_json(read_file(path), path) : json();
}

// A token given as a string or as {"content": ...} (tokenizer_config.json uses both).
std::optional<int32_t> token_field(const json& cfg, const char* key, const Tokenizer& tok, const std::string& path) {
  if (!cfg.is_object() || !cfg.contains(key) || cfg[key].is_null()) return std::nullopt;
  const json& v = cfg[key];
  std::string content = v.is_string()                            ? v.get<std::string>()
                        : v.is_object() && v.contains("content") ? v["content"].get<std::string>()
                                                                 : "";
  if (content.empty()) return std::nullopt;
  auto id = tok.token_to_id(content);
  if (!id) throw Error(path + ": \"" + key + "\" = " + quote(content) + " is not a token of the tokenizer");
  return id;
}

// `id` appended unless `ids` holds it already (stop ids keep the order they were found in).
void add_id(std::vector<int32_t>& ids, int32_t id) {
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

void add_ids(const json& cfg, const char* key, std::vector<int32_t>& out) {
  if (!cfg.is_object() || !cfg.contains(key)) return;
  const json& v = cfg[key];
  auto add = [&](const json& x) {
    if (x.is_number_integer()) add_id(out, x.get<int32_t>());
  };
  if (v.is_array())
    for (const auto& x : v) add(x);
  else
    add(v);
}

// The token that ends an assistant turn in the chat template (Llama 3's <|eot_id|>, Gemma's
// <end_of_turn>, Phi's <|end|>): the first one after a rendered assistant message, if special.
std::optional<int32_t> end_of_turn_id(const ChatTemplate& chat, const Tokenizer& tok) {
  jinja::Text t;
  try {
    t = chat.render({{"user", "?"}, {"assistant", "X"}}, /*add_generation_prompt=*/false);
  } catch (const Error&) {
    return std::nullopt;  // a template that refuses this conversation has no turn to read
  }
  for (auto sp = t.spans.rbegin(); sp != t.spans.rend(); ++sp) {
    if (t.s.compare(sp->begin, sp->end - sp->begin, "X") != 0) continue;
    const std::vector<int32_t> after = tok.encode(trim(std::string_view(t.s).substr(sp->end)), /*match_special=*/true);
    if (!after.empty() && tok.is_special(after[0])) return after[0];
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

SpecialIds load_special_ids(const std::string& model_dir, const Tokenizer& tok, const ChatSettings& chat) {
  const std::string tc_path = model_dir + "/tokenizer_config.json";
  json gen = read_json_if_exists(model_dir + "/generation_config.json");
  json cfg = read_json_if_exists(model_dir + "/config.json");
  json tc = read_json_if_exists(tc_path);
  SpecialIds s;
  s.chat = load_chat_template(model_dir, chat);
  // EOS: generation_config first (it lists every stop id), then config.json, then the tokenizer's.
  add_ids(gen, "eos_token_id", s.eos);
  add_ids(cfg, "eos_token_id", s.eos);
  if (auto id = token_field(tc, "eos_token", tok, tc_path)) add_id(s.eos, *id);
  // The template's end of turn stops generation too, whether or not the files list it.
  if (auto id = end_of_turn_id(s.chat, tok)) add_id(s.eos, *id);
  // BOS is prepended only when tokenizer_config.json says add_bos_token (Qwen: no BOS).
  s.bos = token_field(tc, "bos_token", tok, tc_path);
  if (!s.bos && cfg.is_object() && cfg.contains("bos_token_id") && cfg["bos_token_id"].is_number_integer())
    s.bos = cfg["bos_token_id"].get<int32_t>();
  s.add_bos = tc.is_object() && tc.value("add_bos_token", false) && s.bos.has_value();
  if (auto id = token_field(tc, "pad_token", tok, tc_path))
    s.pad = *id;
  else if (cfg.is_object() && cfg.contains("pad_token_id") && cfg["pad_token_id"].is_number_integer())
    s.pad = cfg["pad_token_id"];
  else
    s.pad = s.eos.empty() ? 0 : s.eos.front();
  // The embedding needs a row for every id the tokenizer can produce; checked here, at load, so
  // that no run dies later in an index_select ("index out of range in self", or a device-side
  // assert on a GPU) with no file named.
  if (cfg.is_object() && cfg.contains("vocab_size") && cfg["vocab_size"].is_number_integer()) {
    const int64_t n_vocab = cfg["vocab_size"].get<int64_t>();
    auto check = [&](int64_t id, const std::string& what) {
      if (id >= n_vocab)
        throw Error(model_dir + ": " + what + " " + std::to_string(id) + " but config.json's vocab_size is " + std::to_string(n_vocab) +
                    ": the tokenizer does not belong to this model (every id must be < vocab_size)");
    };
    check(static_cast<int64_t>(tok.vocab_size()) - 1, "the tokenizer's largest id is");
    for (int32_t id : s.eos) check(id, "the EOS id is");
    if (s.bos) check(*s.bos, "the BOS id is");
    check(s.pad, "the pad id is");
  }
  return s;
}

}  // namespace grpo
