// tokenizer_util.cpp: UTF-8, the byte-level alphabet, regexes and tokenizer.json fields (see tokenizer_stages.h).
#include "grpo/tokenizer/tokenizer.h"
#include "tokenizer_stages.h"

namespace grpo::hf {

// ---------------------------------------------------------------------------------------------
// UTF-8 helpers

// Length of the valid UTF-8 sequence at s[i], or 0 if the bytes there are not one (the maximal
// invalid subpart is then reported through `bad_len`, as Rust's from_utf8_lossy groups them).
size_t utf8_valid_len(std::string_view s, size_t i, size_t* bad_len) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF)
    need = 1;
  else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    *bad_len = 1;
    return 0;
  }
  size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= s.size()) break;
    unsigned char cc = b(i + k);
    unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (cc < l || cc > h) break;
  }
  if (k == need + 1) return need + 1;
  *bad_len = k;  // the lead byte plus the continuation bytes that were still valid
  return 0;
}

// Decode s into code points with their byte offsets (s must be valid UTF-8).
std::vector<std::pair<size_t, size_t>> utf8_chars(std::string_view s) {
  std::vector<std::pair<size_t, size_t>> out;  // (offset, length)
  for (size_t i = 0; i < s.size();) {
    size_t bad = 0, n = utf8_valid_len(s, i, &bad);
    if (n == 0) n = bad;
    out.emplace_back(i, n);
    i += n;
  }
  return out;
}

std::string utf8proc_apply(std::string_view text, int options) {
  std::string valid = utf8_lossy(text);
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(valid.data()), static_cast<utf8proc_ssize_t>(valid.size()),
                                    &out, static_cast<utf8proc_option_t>(options));
  if (n < 0) throw Error(std::string("unicode normalization failed: ") + utf8proc_errmsg(n));
  std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

const ByteLevelTable& byte_level() {
  static const ByteLevelTable t;
  return t;
}

const json& field(const json& obj, const char* key, const Ctx& ctx, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key)) ctx.fail(where + ": missing field \"" + key + "\"");
  return obj[key];
}

std::string str_field(const json& obj, const char* key, const Ctx& ctx, const std::string& where) {
  const json& v = field(obj, key, ctx, where);
  if (!v.is_string()) ctx.fail(where + ".\"" + key + "\": expected a string, found " + v.type_name());
  return v.get<std::string>();
}

bool bool_field(const json& obj, const char* key, bool def) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_boolean()) return def;
  return obj[key].get<bool>();
}

Pattern parse_pattern(const json& obj, const Ctx& ctx, const std::string& where) {
  const json& p = field(obj, "pattern", ctx, where);
  Pattern out;
  if (p.is_object() && p.contains("String") && p["String"].is_string())
    out.literal = p["String"].get<std::string>();
  else if (p.is_object() && p.contains("Regex") && p["Regex"].is_string())
    out.regex = std::make_shared<Regex>(p["Regex"].get<std::string>(), ctx.name + ": " + where);
  else
    ctx.fail(where + ".pattern: expected {\"String\": ...} or {\"Regex\": ...}");
  return out;
}

std::string replace_all(std::string_view s, const Pattern& pat, const std::string& content) {
  std::string out;
  size_t last = 0;
  for (auto [b, e] : pat.find_all(s)) {
    out.append(s.substr(last, b - last));
    out += content;
    last = e;
  }
  out.append(s.substr(last));
  return out;
}

}  // namespace grpo::hf

namespace grpo {

using namespace hf;

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t bad = 0, n = utf8_valid_len(s, i, &bad);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append(kReplacementChar);
      i += bad;
    }
  }
  return out;
}

std::string nfc(std::string_view text) {
  if (is_ascii(text)) return std::string(text);
  return utf8proc_apply(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
}

}  // namespace grpo
