// math_answer.cpp: answer_mode math's equivalence (see math_answer.h for the rules). Text is
// normalised, tokenised and parsed by recursive descent into a Node tree; values are compared by
// evaluating both trees at a few points per variable, structures member by member.
#include "grpo/rewards/math_answer.h"

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "grpo/base/common.h"
#include "grpo/rewards/reward.h"

namespace grpo {

Gold::Gold(double v) : text(json_text(nlohmann::json(v))), number(v) {}

Gold Gold::from_text(std::string t) {
  Gold g;
  g.number = whole_number(t);
  g.text = std::move(t);
  g.is_string = true;
  return g;
}

nlohmann::json gold_json(const Gold& g) {
  if (g.missing) return nullptr;
  if (g.is_string || !g.number) return g.text;
  return *g.number;
}

namespace math_impl {

// ---------------------------------------------------------------------------------------------
// Normalise: LaTeX spellings folded into one; set braces become \x01 \x02 (internal only).

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit_char(char c) {
  return c >= '0' && c <= '9';
}
bool is_num_char(char c) {
  return is_digit_char(c) || c == '.';
}

// \frac14 -> \frac{1}{4}, \sqrt2 -> \sqrt{2}, x^23 -> x^{2}3: a command's bare argument is one character.
void brace_bare_arguments(std::string& s) {
  auto brace_at = [&s](size_t i) {
    while (i < s.size() && s[i] == ' ') s.erase(i, 1);  // "\sqrt 3"
    if (i < s.size() && s[i] != '{' && s[i] != '\\' && s[i] != '[' && s[i] != ' ') s.replace(i, 1, std::string("{") + s[i] + "}");
  };
  for (size_t p = s.find("\\frac"); p != std::string::npos; p = s.find("\\frac", p + 1)) {
    size_t a = p + 5;
    brace_at(a);
    if (a < s.size() && s[a] == '{') {
      int depth = 0;
      size_t j = a;
      for (; j < s.size(); ++j) {
        depth += s[j] == '{' ? 1 : s[j] == '}' ? -1 : 0;
        if (depth == 0) break;
      }
      brace_at(j + 1);
    }
  }
  for (size_t p = s.find("\\sqrt"); p != std::string::npos; p = s.find("\\sqrt", p + 1)) brace_at(p + 5);
  for (size_t p = s.find('^'); p != std::string::npos; p = s.find('^', p + 1)) brace_at(p + 1);
}

std::string normalize(std::string_view in) {
  std::string s(trim(in));
  for (auto [from, to] : std::initializer_list<std::pair<std::string_view, std::string_view>>{{"\\left", ""},
                                                                                              {"\\right", ""},
                                                                                              {"\\displaystyle", ""},
                                                                                              {"\\!", ""},
                                                                                              {"\\,", ""},
                                                                                              {"\\;", " "},
                                                                                              {"\\:", " "},
                                                                                              {"\\ ", " "},
                                                                                              {"~", " "},
                                                                                              {"\\dfrac", "\\frac"},
                                                                                              {"\\tfrac", "\\frac"},
                                                                                              {"^\\circ", ""},
                                                                                              {"^{\\circ}", ""},
                                                                                              {"\\circ", ""},
                                                                                              {"\\degree", ""},
                                                                                              {"\xC2\xB0", ""},
                                                                                              {"\\%", "%"},
                                                                                              {"\\$", ""},
                                                                                              {"$", ""},
                                                                                              {"{,}", ","},
                                                                                              {"\\cdot", "*"},
                                                                                              {"\\times", "*"},
                                                                                              {"\\ast", "*"},
                                                                                              {"\\div", "/"},
                                                                                              {"\xE2\x88\x92", "-"},
                                                                                              {"\\{", "\x01"},
                                                                                              {"\\}", "\x02"},
                                                                                              {"\\text{", "{"},
                                                                                              {"\\textbf{", "{"},
                                                                                              {"\\textit{", "{"},
                                                                                              {"\\mathrm{", "{"},
                                                                                              {"\\mathbf{", "{"},
                                                                                              {"\\mbox{", "{"},
                                                                                              {"\\operatorname{", "{"},
                                                                                              {"\\boxed{", "{"}})
    replace_all(s, from, to);
  replace_all(s, "{ and }", ",");  // "1 \text{ and } 2"
  replace_all(s, "{and}", ",");
  brace_bare_arguments(s);
  while (!s.empty() && (s.back() == '.' || s.back() == ' ')) s.pop_back();  // "The answer is 3."
  return s;
}

// ---------------------------------------------------------------------------------------------
// Tokens

enum class Tok { Num, Var, Word, Cmd, Op, End };

struct Token {
  Tok kind;
  std::string text;  // Num: digits without separators; Var/Word: lower-cased; Cmd: name; Op: the character
  bool decimal = false;
};

// A number at s[i]: digits with ",ddd" groups (not followed by a digit), then ".digits"; or ".5".
size_t lex_number(const std::string& s, size_t i, Token& t) {
  size_t j = i;
  while (j < s.size() && is_digit_char(s[j])) t.text += s[j++];
  while (j + 3 < s.size() && s[j] == ',' && is_digit_char(s[j + 1]) && is_digit_char(s[j + 2]) && is_digit_char(s[j + 3]) &&
         (j + 4 >= s.size() || !is_digit_char(s[j + 4])) && j > i) {
    t.text.append(s, j + 1, 3);
    j += 4;
  }
  if (j + 1 < s.size() && s[j] == '.' && is_digit_char(s[j + 1])) {
    t.decimal = true;
    t.text += s[j++];
    while (j < s.size() && is_digit_char(s[j])) t.text += s[j++];
  }
  return j;
}

std::optional<std::vector<Token>> tokenize(const std::string& s) {
  std::vector<Token> out;
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    Token t{Tok::Op, ""};
    if (c == ' ' || c == '\t' || c == '\n') {
      ++i;
      continue;
    } else if (is_num_char(c) && (c != '.' || (i + 1 < s.size() && is_digit_char(s[i + 1])))) {
      t.kind = Tok::Num;
      i = lex_number(s, i, t);
    } else if (c == '\\') {
      size_t j = i + 1;
      while (j < s.size() && is_letter(s[j])) ++j;
      if (j == i + 1) return std::nullopt;  // an escape we do not read
      t = {Tok::Cmd, s.substr(i + 1, j - i - 1)};
      i = j;
    } else if (is_letter(c)) {
      size_t j = i;
      while (j < s.size() && is_letter(s[j])) ++j;
      t = {j - i == 1 ? Tok::Var : Tok::Word, to_lower(s.substr(i, j - i))};
      if (t.text == "and") t = {Tok::Op, ","};  // "3 and 2": math-verify reads a list
      i = j;
    } else if (std::string_view("+-*/^()[]{},=%!\x01\x02").find(c) != std::string_view::npos) {
      t.text = std::string(1, c);
      ++i;
    } else {
      return std::nullopt;
    }
    out.push_back(std::move(t));
  }
  out.push_back({Tok::End, ""});
  return out;
}

// ---------------------------------------------------------------------------------------------
// Expression tree

enum class Kind { Num, Var, Word, Pi, Inf, Add, Mul, Div, Pow, Neg, Root, Percent, Tuple, Set, Eq };

struct Node {
  Kind kind = Kind::Num;
  double value = 0;          // Num
  bool decimal = false;      // Num written with a decimal point
  bool integer = false;      // Num written as digits only
  std::string name;          // Var, Word
  char open = 0, close = 0;  // Tuple: its brackets
  std::vector<Node> kids;
};

Node make(Kind k, std::vector<Node> kids = {}) {
  Node n;
  n.kind = k;
  n.kids = std::move(kids);
  return n;
}

class ParseFail {};

// Nesting past kMaxDepth is not an answer: refused, so a completion of 10,000 "(" cannot exhaust the stack.
constexpr int kMaxDepth = 100;
struct Nest {
  int& depth;
  explicit Nest(int& d) : depth(d) {
    if (++depth > kMaxDepth) throw ParseFail();
  }
  ~Nest() { --depth; }
};

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  Node answer() {
    Node n = list();
    expect_end();
    return n;
  }

 private:
  const Token& peek() const { return t_[i_]; }
  bool at_op(std::string_view op) const { return peek().kind == Tok::Op && peek().text == op; }
  void take(std::string_view op) {
    if (!at_op(op)) throw ParseFail();
    ++i_;
  }
  void expect_end() {
    if (peek().kind != Tok::End) throw ParseFail();
  }

  // item (',' item)*: one item is itself, several a set (a bare list: order free).
  Node list() {
    std::vector<Node> items = members();
    if (items.size() == 1) return std::move(items[0]);
    return make(Kind::Set, std::move(items));
  }
  std::vector<Node> members() {
    std::vector<Node> items{relation()};
    while (at_op(",")) {
      ++i_;
      items.push_back(relation());
    }
    return items;
  }
  // expr ('=' expr)*: a chain keeps its first left side and last right side (math-verify's).
  Node relation() {
    Nest nest(depth_);
    Node lhs = expr();
    if (!at_op("=")) return lhs;
    Node rhs;
    while (at_op("=")) {
      ++i_;
      rhs = expr();
    }
    return make(Kind::Eq, {std::move(lhs), std::move(rhs)});
  }
  Node expr() {
    Node acc;
    bool first = true;
    while (true) {
      bool neg = false;
      if (at_op("+") || at_op("-")) {
        neg = peek().text == "-";
        ++i_;
      } else if (!first) {
        return acc;
      }
      Node term_node = term();
      if (neg) term_node = make(Kind::Neg, {std::move(term_node)});
      acc = first ? std::move(term_node) : make(Kind::Add, {std::move(acc), std::move(term_node)});
      first = false;
    }
  }
  bool starts_factor() const {
    const Token& k = peek();
    if (k.kind == Tok::Num || k.kind == Tok::Var || k.kind == Tok::Word || k.kind == Tok::Cmd) return true;
    return k.kind == Tok::Op && (k.text == "(" || k.text == "{" || k.text == "\x01");
  }
  Node term() {
    Node acc = power();
    while (true) {
      if (at_op("*") || at_op("/")) {
        const bool div = peek().text == "/";
        ++i_;
        acc = make(div ? Kind::Div : Kind::Mul, {std::move(acc), power()});
      } else if (starts_factor()) {
        Node next = power();
        const bool mixed = acc.kind == Kind::Num && acc.integer && next.kind == Kind::Div && next.kids[0].integer && next.kids[1].integer;
        acc = make(mixed ? Kind::Add : Kind::Mul, {std::move(acc), std::move(next)});  // 1\frac{1}{2} is 3/2
      } else {
        return acc;
      }
    }
  }
  Node power() {
    Nest nest(depth_);
    if (at_op("-")) {  // -x^2 = -(x^2)
      ++i_;
      return make(Kind::Neg, {power()});
    }
    Node base = postfix();
    if (!at_op("^")) return base;
    ++i_;
    return make(Kind::Pow, {std::move(base), power()});
  }
  Node postfix() {
    Node a = atom();
    if (at_op("%")) {
      ++i_;
      return make(Kind::Percent, {std::move(a)});
    }
    return a;
  }
  Node group() {  // {..}: a required LaTeX argument
    take("{");
    Node n = relation();
    take("}");
    return n;
  }
  Node bracketed() {
    const char open = peek().text[0];
    ++i_;
    std::vector<Node> items = members();
    if (!(at_op(")") || at_op("]"))) throw ParseFail();
    const char close = peek().text[0];
    ++i_;
    if (items.size() == 1 && ((open == '(' && close == ')') || (open == '[' && close == ']'))) return std::move(items[0]);
    Node n = make(Kind::Tuple, std::move(items));
    n.open = open;
    n.close = close;
    return n;
  }
  Node command() {
    const std::string name = peek().text;
    ++i_;
    if (name == "pi") return make(Kind::Pi);
    if (name == "infty" || name == "infinity") return make(Kind::Inf);
    if (name == "frac") {
      Node num = group();
      return make(Kind::Div, {std::move(num), group()});
    }
    if (name == "sqrt") {
      Node index = make(Kind::Num);
      index.value = 2;
      index.integer = true;
      if (at_op("[")) {
        ++i_;
        index = expr();
        take("]");
      }
      return make(Kind::Root, {group(), std::move(index)});
    }
    Node v = make(Kind::Var);  // \alpha, \theta, ...: a variable of that name
    v.name = name;
    return v;
  }
  Node atom() {
    const Token& k = peek();
    if (k.kind == Tok::Num) {
      Node n = make(Kind::Num);
      n.value = std::strtod(k.text.c_str(), nullptr);
      n.decimal = k.decimal;
      n.integer = !k.decimal;
      ++i_;
      return n;
    }
    if (k.kind == Tok::Var || k.kind == Tok::Word) {
      Node n = make(k.kind == Tok::Var ? Kind::Var : Kind::Word);
      n.name = k.text;
      ++i_;
      return n;
    }
    if (k.kind == Tok::Cmd) return command();
    if (at_op("{")) {
      ++i_;
      Node n = list();
      take("}");
      return n;
    }
    if (at_op("\x01")) {
      ++i_;
      std::vector<Node> items = members();
      take("\x02");
      return make(Kind::Set, std::move(items));
    }
    if (at_op("(") || at_op("[")) return bracketed();
    throw ParseFail();
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
};

bool only_words(const Node& n) {
  return n.kind == Kind::Word || (n.kind == Kind::Mul && only_words(n.kids[0]) && only_words(n.kids[1]));
}

// Words beside a value are units or filler ("5 \text{ cm}", "5 dollars", "the answer is 5"): dropped
// from products.
Node drop_units(Node n) {
  for (auto& k : n.kids) k = drop_units(std::move(k));
  if (n.kind != Kind::Mul) return n;
  const bool w0 = only_words(n.kids[0]), w1 = only_words(n.kids[1]);
  if (w0 && !w1) return std::move(n.kids[1]);
  if (w1 && !w0) return std::move(n.kids[0]);
  return n;
}

std::optional<Node> parse(std::string_view text) {
  auto toks = tokenize(normalize(text));
  if (!toks || toks->size() == 1) return std::nullopt;
  try {
    return drop_units(Parser(std::move(*toks)).answer());
  } catch (const ParseFail&) {
    return std::nullopt;
  }
}

// ---------------------------------------------------------------------------------------------
// Values

void collect(const Node& n, std::set<std::string>& vars, bool& words) {
  if (n.kind == Kind::Var) vars.insert(n.name);
  if (n.kind == Kind::Word) words = true;
  for (const auto& k : n.kids) collect(k, vars, words);
}

// A variable's value at sample point p: distinct, irrational-looking, away from poles at 0 and +-1.
double sample(const std::string& name, int p) {
  size_t h = std::hash<std::string>()(name) % 997;
  return 0.7313 + 0.917 * p + 0.0131 * double(h) / 997.0 + 0.29 * std::sin(1.7 * p + double(h));
}

double eval(const Node& n, const std::map<std::string, double>& at) {
  auto k = [&](size_t i) { return eval(n.kids[i], at); };
  switch (n.kind) {
    case Kind::Num:
      return n.value;
    case Kind::Var:
      return at.at(n.name);
    case Kind::Pi:
      return M_PI;
    case Kind::Inf:
      return INFINITY;
    case Kind::Add:
      return k(0) + k(1);
    case Kind::Mul:
      return k(0) * k(1);
    case Kind::Div:
      return k(0) / k(1);
    case Kind::Neg:
      return -k(0);
    case Kind::Pow:
      return std::pow(k(0), k(1));
    case Kind::Root: {
      const double x = k(0), r = k(1);
      const bool odd = std::fmod(std::abs(r), 2.0) == 1.0;
      return x < 0 && odd ? -std::pow(-x, 1.0 / r) : std::pow(x, 1.0 / r);
    }
    case Kind::Percent:
      return k(0) / 100.0;
    default:
      return NAN;  // words, tuples, sets, equations have no single value
  }
}

bool decimal_literal(const Node& n) {  // math-verify's "a Float" (or a Float percentage)
  if (n.kind == Kind::Neg || n.kind == Kind::Percent) return decimal_literal(n.kids[0]);
  return n.kind == Kind::Num && n.decimal;
}
const Node* integer_percent(const Node& n) {  // the integer x of "x%", or null
  return n.kind == Kind::Percent && n.kids[0].kind == Kind::Num && n.kids[0].integer ? &n.kids[0] : nullptr;
}

bool numbers_match(double a, double b, bool rounded) {
  if (std::isnan(a) || std::isnan(b)) return false;
  if (std::isinf(a) || std::isinf(b)) return a == b;
  const double tol = 1e-9 * std::max({1.0, std::abs(a), std::abs(b)});
  if (rounded) return std::abs(std::round(a * 1e6) - std::round(b * 1e6)) * 1e-6 <= tol;
  return std::abs(a - b) <= tol;
}

std::string words_of(const Node& n) {
  if (n.kind == Kind::Word || n.kind == Kind::Var) return n.name;
  std::string s;
  for (const auto& k : n.kids) s += words_of(k);
  return s;
}

bool values_equal(const Node& g, const Node& a) {
  std::set<std::string> gv, av;
  bool gw = false, aw = false;
  collect(g, gv, gw);
  collect(a, av, aw);
  if (gw || aw) return gw && aw && words_of(g) == words_of(a);
  if (gv != av) return false;
  const Node *gp = integer_percent(g), *ap = integer_percent(a);
  if (gp && a.kind == Kind::Num && a.integer) return gp->value == a.value;  // 9% = 9
  if (ap && g.kind == Kind::Num && g.integer) return ap->value == g.value;
  const bool rounded = decimal_literal(g) || decimal_literal(a);
  for (int p = 0; p < (gv.empty() ? 1 : 4); ++p) {
    std::map<std::string, double> at;
    for (const auto& v : gv) at[v] = sample(v, p);
    if (!numbers_match(eval(g, at), eval(a, at), rounded)) return false;
  }
  return true;
}

bool nodes_equal(const Node& g, const Node& a);

bool sets_equal(const Node& g, const Node& a) {
  if (g.kids.size() != a.kids.size()) return false;
  std::vector<bool> used(a.kids.size(), false);
  for (const auto& m : g.kids) {
    bool found = false;
    for (size_t j = 0; j < a.kids.size() && !found; ++j)
      if (!used[j] && nodes_equal(m, a.kids[j])) used[j] = found = true;
    if (!found) return false;
  }
  return true;
}

bool nodes_equal(const Node& g, const Node& a) {
  const bool ge = g.kind == Kind::Eq, ae = a.kind == Kind::Eq;
  if (ae && !ge) return nodes_equal(g, a.kids[1]);                                 // "x = 5" answers 5
  if (ge && !ae) return g.kids[0].kind == Kind::Var && nodes_equal(g.kids[1], a);  // gold "x = 5", answer 5
  if (ge && ae) return nodes_equal(g.kids[0], a.kids[0]) && nodes_equal(g.kids[1], a.kids[1]);
  if (g.kind == Kind::Set || a.kind == Kind::Set) return g.kind == a.kind && sets_equal(g, a);
  if (g.kind == Kind::Tuple || a.kind == Kind::Tuple) {
    if (g.kind != a.kind || g.open != a.open || g.close != a.close || g.kids.size() != a.kids.size()) return false;
    for (size_t i = 0; i < g.kids.size(); ++i)
      if (!nodes_equal(g.kids[i], a.kids[i])) return false;
    return true;
  }
  return values_equal(g, a);
}

std::string squeezed(std::string_view s) {
  std::string out;
  for (char c : normalize(s))
    if (c != ' ') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace math_impl

bool math_answers_equal(std::string_view answer, std::string_view gold) {
  using namespace math_impl;
  auto g = parse(gold), a = parse(answer);
  if (g && a) return nodes_equal(*g, *a);
  const std::string gs = squeezed(gold), as = squeezed(answer);
  return !gs.empty() && gs == as;
}

}  // namespace grpo
