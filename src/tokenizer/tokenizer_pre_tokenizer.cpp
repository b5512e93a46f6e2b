// tokenizer_pre_tokenizer.cpp: pre-tokenizers, a list of pieces in, a finer list out (see tokenizer_stages.h).
#include "tokenizer_stages.h"

namespace grpo::hf {

void parse_pre_tokenizer(const json& j, const Ctx& ctx, const std::string& where, std::vector<PreTokenizer>& out) {
  if (j.is_null()) return;
  std::string type = str_field(j, "type", ctx, where);
  PreTokenizer p{};
  if (type == "Sequence") {
    const json& list = field(j, "pretokenizers", ctx, where);
    for (size_t i = 0; i < list.size(); ++i) parse_pre_tokenizer(list[i], ctx, where + ".pretokenizers[" + std::to_string(i) + "]", out);
    return;
  }
  if (type == "Split") {
    p.kind = PreTokenizer::Split;
    p.pattern = parse_pattern(j, ctx, where);
    std::string b = str_field(j, "behavior", ctx, where);
    if (b == "Isolated")
      p.behavior = PreTokenizer::Isolated;
    else if (b == "Removed")
      p.behavior = PreTokenizer::Removed;
    else if (b == "MergedWithPrevious")
      p.behavior = PreTokenizer::MergedWithPrevious;
    else if (b == "MergedWithNext")
      p.behavior = PreTokenizer::MergedWithNext;
    else
      ctx.fail(where + ".behavior: unsupported \"" + b + "\" (supported: Isolated, Removed, MergedWithPrevious, MergedWithNext)");
    if (bool_field(j, "invert", false)) ctx.fail(where + ".invert: true is not supported");
  } else if (type == "ByteLevel") {
    p.kind = PreTokenizer::ByteLevel;
    p.add_prefix_space = bool_field(j, "add_prefix_space", false);
    if (bool_field(j, "use_regex", true)) p.regex = std::make_shared<Regex>(kGpt2Pattern, ctx.name + ": " + where);
  } else if (type == "Metaspace") {
    p.kind = PreTokenizer::Metaspace;
    p.replacement = str_field(j, "replacement", ctx, where);
    p.prepend_scheme = j.contains("prepend_scheme") && j["prepend_scheme"].is_string()
                           ? j["prepend_scheme"].get<std::string>()
                           : (bool_field(j, "add_prefix_space", true) ? "always" : "never");
    p.split = bool_field(j, "split", true);
  } else if (type == "Digits") {
    p.kind = PreTokenizer::Digits;
    p.individual_digits = bool_field(j, "individual_digits", false);
  } else {
    ctx.fail(where + ": unsupported pre_tokenizer type \"" + type + "\" (supported: Split, ByteLevel, Metaspace, Digits, Sequence)");
  }
  out.push_back(std::move(p));
}

// Split `s` at `matches` per `behavior`, appending non-empty pieces to `out`.
void split_by(std::string_view s, const std::vector<std::pair<size_t, size_t>>& matches, PreTokenizer::Behavior behavior,
              std::vector<std::string>& out) {
  std::vector<std::pair<size_t, size_t>> spans;  // pieces as [b, e)
  size_t last = 0;
  for (auto [b, e] : matches) {
    switch (behavior) {
      case PreTokenizer::Isolated:
        spans.emplace_back(last, b);
        spans.emplace_back(b, e);
        break;
      case PreTokenizer::Removed:
        spans.emplace_back(last, b);
        break;
      case PreTokenizer::MergedWithPrevious:
        spans.emplace_back(last, e);
        break;
      case PreTokenizer::MergedWithNext:
        spans.emplace_back(last, b);
        last = b;
        continue;
    }
    last = e;
  }
  spans.emplace_back(last, s.size());
  for (auto [b, e] : spans)
    if (e > b) out.emplace_back(s.substr(b, e - b));
}

std::vector<std::string> apply_pre_tokenizers(std::string text, const std::vector<PreTokenizer>& ps, bool first_segment) {
  std::vector<std::string> pieces;
  if (text.empty()) return pieces;
  pieces.push_back(std::move(text));
  for (const auto& p : ps) {
    std::vector<std::string> next;
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string& piece = pieces[i];
      switch (p.kind) {
        case PreTokenizer::Split:
          split_by(piece, p.pattern.find_all(piece), p.behavior, next);
          break;
        case PreTokenizer::ByteLevel: {
          if (p.add_prefix_space && piece[0] != ' ') piece.insert(piece.begin(), ' ');
          std::vector<std::string> parts;
          if (p.regex)
            split_by(piece, p.regex->find_all(piece), PreTokenizer::Isolated, parts);
          else
            parts.push_back(piece);
          const auto& table = byte_level().byte_to_utf8;
          for (const auto& part : parts) {
            std::string mapped;
            mapped.reserve(part.size() * 2);
            for (unsigned char c : part) mapped += table[c];
            next.push_back(std::move(mapped));
          }
          break;
        }
        case PreTokenizer::Metaspace: {
          std::string s;
          for (char c : piece) {
            if (c == ' ')
              s += p.replacement;
            else
              s += c;
          }
          bool prepend = p.prepend_scheme == "always" || (p.prepend_scheme == "first" && first_segment && i == 0);
          if (prepend && !starts_with(s, p.replacement)) s = p.replacement + s;
          if (p.split) {
            Pattern lit{p.replacement, nullptr};
            split_by(s, lit.find_all(s), PreTokenizer::MergedWithNext, next);
          } else {
            next.push_back(std::move(s));
          }
          break;
        }
        case PreTokenizer::Digits: {
          std::vector<std::pair<size_t, size_t>> runs;
          for (size_t k = 0; k < piece.size();) {
            if (piece[k] >= '0' && piece[k] <= '9') {
              size_t e = k + 1;
              if (!p.individual_digits)
                while (e < piece.size() && piece[e] >= '0' && piece[e] <= '9') ++e;
              runs.emplace_back(k, e);
              k = e;
            } else {
              ++k;
            }
          }
          split_by(piece, runs, PreTokenizer::Isolated, next);
          break;
        }
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace grpo::hf
