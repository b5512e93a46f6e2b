// tokenizer_normalizer.cpp: normalizers, text in, text out (see tokenizer_stages.h).
#include "tokenizer_stages.h"

namespace grpo::hf {

void parse_normalizer(const json& j, const Ctx& ctx, const std::string& where, std::vector<Normalizer>& out) {
  if (j.is_null()) return;
  std::string type = str_field(j, "type", ctx, where);
  Normalizer n{};
  if (type == "Sequence") {
    const json& list = field(j, "normalizers", ctx, where);
    for (size_t i = 0; i < list.size(); ++i) parse_normalizer(list[i], ctx, where + ".normalizers[" + std::to_string(i) + "]", out);
    return;
  }
  if (type == "NFC")
    n.kind = Normalizer::NFC;
  else if (type == "NFD")
    n.kind = Normalizer::NFD;
  else if (type == "NFKC")
    n.kind = Normalizer::NFKC;
  else if (type == "NFKD")
    n.kind = Normalizer::NFKD;
  else if (type == "Lowercase")
    n.kind = Normalizer::Lowercase;
  else if (type == "Prepend") {
    n.kind = Normalizer::Prepend;
    n.text = str_field(j, "prepend", ctx, where);
  } else if (type == "Replace") {
    n.kind = Normalizer::Replace;
    n.pattern = parse_pattern(j, ctx, where);
    n.text = str_field(j, "content", ctx, where);
  } else if (type == "Strip") {
    n.kind = Normalizer::Strip;
    n.strip_left = bool_field(j, "strip_left", true);
    n.strip_right = bool_field(j, "strip_right", true);
  } else {
    ctx.fail(where + ": unsupported normalizer type \"" + type +
             "\" (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence)");
  }
  out.push_back(std::move(n));
}

std::string apply_normalizers(std::string s, const std::vector<Normalizer>& ns) {
  for (const auto& n : ns) {
    switch (n.kind) {
      case Normalizer::NFC:
        s = nfc(s);
        break;
      case Normalizer::NFD:
        s = utf8proc_apply(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
        break;
      case Normalizer::NFKC:
        s = utf8proc_apply(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
        break;
      case Normalizer::NFKD:
        s = utf8proc_apply(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
        break;
      case Normalizer::Lowercase: {
        std::string out;
        for (auto [off, len] : utf8_chars(s)) {
          utf8proc_int32_t cp;
          utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + off), len, &cp);
          append_utf8(out, static_cast<uint32_t>(utf8proc_tolower(cp < 0 ? 0xFFFD : cp)));
        }
        s = std::move(out);
        break;
      }
      case Normalizer::Prepend:
        if (!s.empty()) s = n.text + s;
        break;
      case Normalizer::Replace:
        s = replace_all(s, n.pattern, n.text);
        break;
      case Normalizer::Strip: {
        std::string_view v = s;
        size_t b = n.strip_left ? v.find_first_not_of(" \t\n\r\f\v") : 0;
        if (b == std::string_view::npos) {
          s.clear();
          break;
        }
        size_t e = n.strip_right ? v.find_last_not_of(" \t\n\r\f\v") + 1 : v.size();
        s = std::string(v.substr(b, e - b));
        break;
      }
    }
  }
  return s;
}

}  // namespace grpo::hf
