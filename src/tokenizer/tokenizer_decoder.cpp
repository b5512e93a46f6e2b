// tokenizer_decoder.cpp: decoders, a list of token strings in, a list out; joined at the end (see tokenizer_stages.h).
#include "tokenizer_stages.h"

namespace grpo::hf {

void parse_decoder(const json& j, const Ctx& ctx, const std::string& where, std::vector<Decoder>& out) {
  if (j.is_null()) return;
  std::string type = str_field(j, "type", ctx, where);
  Decoder d{};
  if (type == "Sequence") {
    const json& list = field(j, "decoders", ctx, where);
    for (size_t i = 0; i < list.size(); ++i) parse_decoder(list[i], ctx, where + ".decoders[" + std::to_string(i) + "]", out);
    return;
  }
  if (type == "ByteLevel")
    d.kind = Decoder::ByteLevel;
  else if (type == "Replace") {
    d.kind = Decoder::Replace;
    d.pattern = parse_pattern(j, ctx, where);
    d.content = str_field(j, "content", ctx, where);
  } else if (type == "ByteFallback")
    d.kind = Decoder::ByteFallback;
  else if (type == "Fuse")
    d.kind = Decoder::Fuse;
  else if (type == "Strip") {
    d.kind = Decoder::Strip;
    d.content = str_field(j, "content", ctx, where);
    d.start = j.value("start", 0);
    d.stop = j.value("stop", 0);
  } else if (type == "Metaspace") {
    d.kind = Decoder::Metaspace;
    d.content = str_field(j, "replacement", ctx, where);
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string())
      d.prepend_scheme = j["prepend_scheme"];
    else if (!bool_field(j, "add_prefix_space", true))
      d.prepend_scheme = "never";
  } else {
    ctx.fail(where + ": unsupported decoder type \"" + type +
             "\" (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
  }
  out.push_back(std::move(d));
}

// "<0xNN>" -> the byte, else -1.
int byte_token_value(std::string_view t) {
  if (t.size() != 6 || !starts_with(t, "<0x") || t[5] != '>') return -1;
  auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

namespace {

// ByteLevel: each token's characters back to the bytes they stand for (a token holding other
// characters stays as it is), all joined, invalid UTF-8 replaced by U+FFFD.
std::vector<std::string> decode_byte_level(const std::vector<std::string>& tokens) {
  const auto& cp_to_byte = byte_level().cp_to_byte;
  std::string bytes;
  for (const auto& t : tokens) {
    std::string tb;
    bool all_mapped = true;
    for (auto [off, len] : utf8_chars(t)) {
      utf8proc_int32_t cp = -1;
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(t.data() + off), len, &cp);
      if (cp < 0 || cp >= 324 || cp_to_byte[cp] < 0) {
        all_mapped = false;
        break;
      }
      tb += static_cast<char>(cp_to_byte[cp]);
    }
    bytes += all_mapped ? tb : t;
  }
  return {utf8_lossy(bytes)};
}

// ByteFallback: runs of "<0xNN>" tokens become their bytes when those form valid UTF-8, else one
// U+FFFD per byte token.
std::vector<std::string> decode_byte_fallback(std::vector<std::string> tokens) {
  std::vector<std::string> out;
  std::string pending;
  size_t n_pending = 0;
  auto flush = [&] {
    if (!n_pending) return;
    size_t bad = 0;
    bool valid = true;
    for (size_t i = 0; i < pending.size();) {
      size_t n = utf8_valid_len(pending, i, &bad);
      if (!n) {
        valid = false;
        break;
      }
      i += n;
    }
    if (valid)
      out.push_back(pending);
    else
      for (size_t i = 0; i < n_pending; ++i) out.emplace_back(kReplacementChar);
    pending.clear();
    n_pending = 0;
  };
  for (auto& t : tokens) {
    int b = byte_token_value(t);
    if (b >= 0) {
      pending += static_cast<char>(b);
      ++n_pending;
    } else {
      flush();
      out.push_back(std::move(t));
    }
  }
  flush();
  return out;
}

}  // namespace

std::vector<std::string> apply_decoders(std::vector<std::string> tokens, const std::vector<Decoder>& ds) {
  for (const auto& d : ds) {
    switch (d.kind) {
      case Decoder::ByteLevel:
        tokens = decode_byte_level(tokens);
        break;
      case Decoder::Replace:
        for (auto& t : tokens) t = replace_all(t, d.pattern, d.content);
        break;
      case Decoder::ByteFallback:
        tokens = decode_byte_fallback(std::move(tokens));
        break;
      case Decoder::Fuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens = {all};
        break;
      }
      case Decoder::Strip:
        for (auto& t : tokens) {
          std::string_view v = t;
          for (int i = 0; i < d.start && starts_with(v, d.content); ++i) v.remove_prefix(d.content.size());
          for (int i = 0; i < d.stop && ends_with(v, d.content); ++i) v.remove_suffix(d.content.size());
          t = std::string(v);
        }
        break;
      case Decoder::Metaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          Pattern lit{d.content, nullptr};
          std::string t = replace_all(tokens[i], lit, " ");
          if (i == 0 && d.prepend_scheme != "never" && starts_with(t, " ")) t.erase(0, 1);
          tokens[i] = std::move(t);
        }
        break;
    }
  }
  return tokens;
}

}  // namespace grpo::hf
