// lexer.cpp: template text -> tokens, as jinja2's lexer splits it with transformers' settings:
// newlines normalised to "\n" and one trailing newline dropped (keep_trailing_newline off);
// `{%-`/`-%}` strip the whitespace beside them, `{%+`/`+%}` keep it; trim_blocks drops the first
// newline after a block or comment tag; lstrip_blocks drops the spaces and tabs before a block or
// comment tag that starts its line. Strings take Python's escapes, as jinja2's unicode-escape does.
#include <cctype>

#include "jinja_lexer.h"

namespace grpo::jinja {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string normalise_newlines(const std::string& src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out += '\n';
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out += src[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

class Lexer {
 public:
  Lexer(const std::string& src, const std::string& name) : src_(normalise_newlines(src)), name_(name) {}

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      const size_t p = next_tag(pos_);
      std::string text = src_.substr(pos_, (p == std::string::npos ? src_.size() : p) - pos_);
      if (p == std::string::npos) {
        push_data(text, pos_);
        break;
      }
      const char kind = src_[p + 1];
      const char control = p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+') ? src_[p + 2] : 0;
      if (control == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (control != '+' && kind != '{') {
        lstrip_line(text, line_starting);
      }
      push_data(text, pos_);
      pos_ = p + 2 + (control ? 1 : 0);
      if (kind == '#') {
        comment(p);
      } else {
        tag(kind, p);
      }
      line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
    }
    out_.push_back(tok(Token::End, pos_));
    return std::move(out_);
  }

 private:
  std::string src_, name_;
  size_t pos_ = 0;
  std::vector<Token> out_;

  std::pair<int, int> line_col(size_t at) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return {line, col};
  }
  Token tok(Token::T t, size_t at, std::string s = {}) const {
    Token k;
    k.t = t;
    k.s = std::move(s);
    k.at = at;
    return k;
  }
  [[noreturn]] void fail(size_t at, const std::string& what) const {
    const auto [line, col] = line_col(at);
    throw TemplateError(name_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + what);
  }

  size_t next_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return std::string::npos;
  }
  void push_data(const std::string& text, size_t at) {
    if (!text.empty()) out_.push_back(tok(Token::Data, at, text));
  }
  // lstrip_blocks: spaces and tabs between the line's start and a block tag go.
  static void lstrip_line(std::string& text, bool line_starting) {
    const size_t nl = text.rfind('\n');
    const size_t l = nl == std::string::npos ? 0 : nl + 1;
    if (l == 0 && !line_starting) return;
    if (l == text.size()) return;
    for (size_t i = l; i < text.size(); ++i)
      if (!is_space(text[i])) return;
    text.resize(l);
  }
  void skip_after_end(char control) {
    if (control == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (control == 0 && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
  }

  void comment(size_t start) {
    const size_t e = src_.find("#}", pos_);
    if (e == std::string::npos) fail(start, "a comment {# is never closed with #}");
    const char control = e > pos_ && (src_[e - 1] == '-' || src_[e - 1] == '+') ? src_[e - 1] : 0;
    pos_ = e + 2;
    skip_after_end(control);
  }

  void tag(char kind, size_t start) {
    const bool block = kind == '%';
    out_.push_back(tok(block ? Token::BlockBegin : Token::VarBegin, start));
    const size_t first = out_.size();
    for (;;) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) fail(start, block ? "a block tag {% is never closed with %}" : "an expression {{ is never closed with }}");
      if (const char control = tag_end(block)) {
        out_.push_back(tok(block ? Token::BlockEnd : Token::VarEnd, pos_));
        pos_ += (control == '=' ? 0 : 1) + 2;
        if (block) skip_after_end(control == '=' ? 0 : control);
        if (!block && control == '-') skip_after_end('-');
        if (block && out_.size() == first + 2 && out_[first].t == Token::Name && out_[first].s == "raw") raw(start);
        return;
      }
      out_.push_back(token());
    }
  }
  // At pos_: '=' for a plain end ("%}" / "}}"), '-' or '+' for one with whitespace control, 0 for none.
  char tag_end(bool block) const {
    const char* end = block ? "%}" : "}}";
    if (src_.compare(pos_, 2, end) == 0) return '=';
    if ((src_[pos_] == '-' || (block && src_[pos_] == '+')) && src_.compare(pos_ + 1, 2, end) == 0) return src_[pos_];
    return 0;
  }

  // {% raw %}...{% endraw %}: the text between, as data.
  void raw(size_t start) {
    out_.resize(out_.size() - 3);
    for (size_t i = src_.find("{%", pos_); i != std::string::npos; i = src_.find("{%", i + 2)) {
      size_t j = i + 2;
      const bool strip_before = j < src_.size() && src_[j] == '-';
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) ++j;
      while (j < src_.size() && is_space(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      while (j < src_.size() && is_space(src_[j])) ++j;
      const char control = j < src_.size() && (src_[j] == '-' || src_[j] == '+') ? src_[j] : 0;
      if (src_.compare(j + (control ? 1 : 0), 2, "%}") != 0) continue;
      std::string text = src_.substr(pos_, i - pos_);
      if (strip_before)
        while (!text.empty() && is_space(text.back())) text.pop_back();
      push_data(text, pos_);
      pos_ = j + (control ? 1 : 0) + 2;
      skip_after_end(control);
      return;
    }
    fail(start, "{% raw %} is never closed with {% endraw %}");
  }

  Token token() {
    const size_t at = pos_;
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
      return tok(Token::Name, at, src_.substr(at, pos_ - at));
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return number();
    if (c == '\'' || c == '"') return string_literal();
    static const char* ops[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "*", "/", "%", "~", "[",
                                "]",  "(",  ")",  "{",  "}",  "<",  ">", "=", ".", ":", "|", ",", ";"};
    for (const char* op : ops) {
      const size_t n = std::char_traits<char>::length(op);
      if (src_.compare(pos_, n, op) == 0) {
        pos_ += n;
        return tok(Token::Op, at, op);
      }
    }
    fail(at, "unexpected character " + quote(std::string(1, c)));
  }

  Token number() {
    const size_t at = pos_;
    auto digits = [&] {
      while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
    };
    digits();
    bool is_float = false;
    const bool after_dot = at > 0 && src_[at - 1] == '.';
    if (!after_dot && pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      ++pos_;
      digits();
      is_float = true;
    }
    if (!after_dot && pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t j = pos_ + 1;
      if (j < src_.size() && (src_[j] == '+' || src_[j] == '-')) ++j;
      if (j < src_.size() && std::isdigit(static_cast<unsigned char>(src_[j]))) {
        pos_ = j;
        digits();
        is_float = true;
      }
    }
    std::string text;
    for (size_t i = at; i < pos_; ++i)
      if (src_[i] != '_') text += src_[i];
    Token t = tok(is_float ? Token::Float : Token::Int, at, text);
    try {
      if (is_float) {
        t.f = std::stod(text);
      } else {
        t.i = std::stoll(text);
      }
    } catch (const std::exception&) {
      fail(at, "number " + text + " is out of range");
    }
    return t;
  }

  Token string_literal() {
    const size_t at = pos_;
    const char q = src_[pos_++];
    std::string out;
    while (pos_ < src_.size() && src_[pos_] != q) {
      if (src_[pos_] != '\\') {
        out += src_[pos_++];
        continue;
      }
      if (pos_ + 1 >= src_.size()) break;
      escape(out);
    }
    if (pos_ >= src_.size()) fail(at, "a string is never closed");
    ++pos_;
    return tok(Token::String, at, out);
  }
  // One backslash escape at pos_, as Python's unicode-escape reads it.
  void escape(std::string& out) {
    const char e = src_[pos_ + 1];
    pos_ += 2;
    const char* simple = "n\nt\tr\r\\\\'\'\"\"a\ab\bf\fv\v";
    for (const char* s = simple; *s; s += 2)
      if (*s == e) {
        out += s[1];
        return;
      }
    if (e == '\n') return;
    const int width = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (width) {
      uint32_t cp = 0;
      for (int k = 0; k < width; ++k, ++pos_) {
        if (pos_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[pos_])))
          fail(pos_, "a truncated \\" + std::string(1, e) + " escape");
        cp = cp * 16 + static_cast<uint32_t>(std::stoi(std::string(1, src_[pos_]), nullptr, 16));
      }
      append_utf8(out, cp);
      return;
    }
    if (e >= '0' && e <= '7') {
      uint32_t cp = static_cast<uint32_t>(e - '0');
      for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k)
        cp = cp * 8 + static_cast<uint32_t>(src_[pos_++] - '0');
      append_utf8(out, cp);
      return;
    }
    out += '\\';
    out += e;
  }
};

std::vector<Token> lex(const std::string& src, const std::string& name, std::vector<int>* line_starts) {
  std::vector<Token> toks = Lexer(src, name).run();
  if (line_starts) {
    const std::string norm = normalise_newlines(src);
    line_starts->assign(1, 0);
    for (size_t i = 0; i < norm.size(); ++i)
      if (norm[i] == '\n') line_starts->push_back(static_cast<int>(i + 1));
  }
  return toks;
}

}  // namespace grpo::jinja
