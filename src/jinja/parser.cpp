// parser.cpp: tokens -> syntax tree, by jinja2's grammar and precedence:
//   expression  = or ["if" or ["else" expression]]
//   or / and / not / compare (== != < <= > >= in, not in) / + - / ~ / * / // % / ** / unary - +
//   unary       = primary postfix* (("|" filter) | ("is" ["not"] test) | call)*
//   postfix     = "." name | "." integer | "[" subscript or slice "]" | "(" arguments ")"
// Statements: if/elif/else, for (targets, "if" filter, else), set (names, ns.attr, block set with
// filters), macro, break, continue, filter blocks, and transformers' `generation` (its body).
#include <algorithm>

#include "jinja_lexer.h"

namespace grpo::jinja {

namespace {

class Parser {
 public:
  Parser(std::vector<Token> toks, std::vector<int> line_starts, std::string name)
      : toks_(std::move(toks)), line_starts_(std::move(line_starts)), name_(std::move(name)) {}

  NodePtr parse() {
    NodePtr root = node(Node::K::Template);
    root->body = body({});
    if (peek().t != Token::End) fail("unexpected tag '" + toks_[i_ + 1].s + "'");
    return root;
  }

 private:
  std::vector<Token> toks_;
  std::vector<int> line_starts_;
  std::string name_;
  size_t i_ = 0;
  int depth_ = 0;

  const Token& peek(size_t ahead = 0) const { return toks_[std::min(i_ + ahead, toks_.size() - 1)]; }
  const Token& next() { return toks_[std::min(i_++, toks_.size() - 1)]; }
  bool is_op(const char* op, size_t ahead = 0) const { return peek(ahead).t == Token::Op && peek(ahead).s == op; }
  bool is_name(const char* n, size_t ahead = 0) const { return peek(ahead).t == Token::Name && peek(ahead).s == n; }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    ++i_;
    return true;
  }
  bool accept_name(const char* n) {
    if (!is_name(n)) return false;
    ++i_;
    return true;
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) fail(std::string("expected '") + op + "', found " + describe(peek()));
  }
  std::string expect_name() {
    if (peek().t != Token::Name) fail("expected a name, found " + describe(peek()));
    return next().s;
  }
  // A filter's or test's name: name(.name)*.
  std::string dotted_name() {
    std::string n = expect_name();
    while (accept_op(".")) n += "." + expect_name();
    return n;
  }
  void expect_block_end() {
    if (peek().t != Token::BlockEnd) fail("expected the end of the tag %}, found " + describe(peek()));
    ++i_;
  }
  static std::string describe(const Token& t) {
    switch (t.t) {
      case Token::Name:
        return "'" + t.s + "'";
      case Token::Op:
        return "'" + t.s + "'";
      case Token::String:
        return "a string";
      case Token::Int:
      case Token::Float:
        return "a number";
      case Token::BlockEnd:
        return "the end of the tag";
      case Token::VarEnd:
        return "the end of the expression";
      case Token::End:
        return "the end of the template";
      default:
        return "text";
    }
  }
  [[noreturn]] void fail(const std::string& what) const {
    const size_t at = peek().at;
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), static_cast<int>(at));
    const int line = static_cast<int>(it - line_starts_.begin());
    const int col = static_cast<int>(at) - line_starts_[line - 1] + 1;
    throw TemplateError(name_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + what);
  }
  NodePtr node(Node::K k) const {
    auto n = std::make_shared<Node>();
    n->kind = k;
    const size_t at = peek().at;
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), static_cast<int>(at));
    n->line = static_cast<int>(it - line_starts_.begin());
    n->col = static_cast<int>(at) - line_starts_[n->line - 1] + 1;
    return n;
  }
  struct Deeper {
    Parser& p;
    explicit Deeper(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxParseDepth) p.fail("the template nests deeper than " + std::to_string(kMaxParseDepth) + " levels");
    }
    ~Deeper() { --p.depth_; }
  };

  // ---- statements
  // Statements up to a tag named in `ends` (left unread at its name) or the end of the template.
  std::vector<NodePtr> body(const std::vector<std::string>& ends) {
    Deeper d(*this);
    std::vector<NodePtr> out;
    for (;;) {
      const Token& t = peek();
      if (t.t == Token::End) {
        if (!ends.empty()) fail("the template ends inside a block: expected {% " + ends.back() + " %}");
        return out;
      }
      if (t.t == Token::Data) {
        NodePtr n = node(Node::K::Data);
        n->value = Value::string(next().s);
        out.push_back(n);
      } else if (t.t == Token::VarBegin) {
        ++i_;
        NodePtr n = node(Node::K::Print);
        n->kids.push_back(expression());
        if (peek().t != Token::VarEnd) fail("expected the end of the expression }}, found " + describe(peek()));
        ++i_;
        out.push_back(n);
      } else if (t.t == Token::BlockBegin) {
        if (peek(1).t == Token::Name && std::find(ends.begin(), ends.end(), peek(1).s) != ends.end()) {
          ++i_;
          return out;
        }
        ++i_;
        out.push_back(statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  NodePtr statement() {
    const std::string tag = peek().t == Token::Name ? peek().s : "";
    if (tag == "if") return if_statement();
    if (tag == "for") return for_statement();
    if (tag == "set") return set_statement();
    if (tag == "macro") return macro_statement();
    if (tag == "filter") return filter_block();
    if (tag == "generation") {
      ++i_;
      expect_block_end();
      NodePtr n = node(Node::K::Template);
      n->body = body({"endgeneration"});
      ++i_;
      expect_block_end();
      return n;
    }
    if (tag == "break" || tag == "continue") {
      NodePtr n = node(tag == "break" ? Node::K::Break : Node::K::Continue);
      ++i_;
      expect_block_end();
      return n;
    }
    if (tag.empty()) fail("expected a tag name after {%, found " + describe(peek()));
    fail("unknown tag '" + tag + "' (this engine knows if, for, set, macro, filter, generation, break, continue, raw)");
  }

  NodePtr if_statement() {
    NodePtr n = node(Node::K::If);
    ++i_;
    for (;;) {
      n->kids.push_back(expression());
      expect_block_end();
      n->bodies.push_back(body({"elif", "else", "endif"}));
      const std::string tag = next().s;
      if (tag == "elif") continue;
      if (tag == "else") {
        expect_block_end();
        n->else_body = body({"endif"});
        ++i_;
      }
      expect_block_end();
      return n;
    }
  }

  // Assignment targets: a name, or names separated by commas (optionally in parentheses).
  std::vector<std::string> targets() {
    std::vector<std::string> names;
    const bool paren = accept_op("(");
    do {
      names.push_back(expect_name());
    } while (accept_op(","));
    if (paren) expect_op(")");
    return names;
  }

  NodePtr for_statement() {
    NodePtr n = node(Node::K::For);
    ++i_;
    n->names = targets();
    if (!accept_name("in")) fail("expected 'in' in a for loop, found " + describe(peek()));
    n->kids.push_back(or_expr());
    n->kids.push_back(accept_name("if") ? expression(false) : nullptr);
    if (is_name("recursive")) fail("recursive for loops are not supported");
    expect_block_end();
    n->body = body({"else", "endfor"});
    if (next().s == "else") {
      expect_block_end();
      n->else_body = body({"endfor"});
      ++i_;
    }
    expect_block_end();
    return n;
  }

  NodePtr set_statement() {
    ++i_;
    if (peek().t == Token::Name && is_op(".", 1)) {
      NodePtr n = node(Node::K::Set);
      n->name = next().s;
      ++i_;
      n->attr = expect_name();
      expect_op("=");
      n->kids.push_back(expression());
      expect_block_end();
      return n;
    }
    NodePtr n = node(Node::K::Set);
    n->names = targets();
    if (accept_op("=")) {
      n->kids.push_back(tuple_or_expression());
      expect_block_end();
      return n;
    }
    if (n->names.size() != 1) fail("a block set assigns one name");
    n->kind = Node::K::SetBlock;
    n->name = n->names[0];
    while (accept_op("|")) n->kids.push_back(filter(nullptr));
    expect_block_end();
    n->body = body({"endset"});
    ++i_;
    expect_block_end();
    return n;
  }

  NodePtr macro_statement() {
    NodePtr n = node(Node::K::Macro);
    ++i_;
    n->name = expect_name();
    expect_op("(");
    while (!accept_op(")")) {
      if (!n->names.empty()) expect_op(",");
      if (accept_op(")")) break;
      n->names.push_back(expect_name());
      n->kids.push_back(accept_op("=") ? expression() : nullptr);
    }
    expect_block_end();
    n->body = body({"endmacro"});
    ++i_;
    if (peek().t == Token::Name) ++i_;
    expect_block_end();
    return n;
  }

  NodePtr filter_block() {
    NodePtr n = node(Node::K::FilterBlock);
    ++i_;
    NodePtr chain = filter(nullptr);
    while (accept_op("|")) chain = filter(chain);
    n->kids.push_back(chain);
    expect_block_end();
    n->body = body({"endfilter"});
    ++i_;
    expect_block_end();
    return n;
  }

  // ---- expressions
  NodePtr tuple_or_expression() {
    NodePtr first = expression();
    if (!is_op(",")) return first;
    NodePtr t = node(Node::K::Tuple);
    t->kids.push_back(first);
    while (accept_op(",")) {
      if (peek().t == Token::BlockEnd || peek().t == Token::VarEnd || is_op(")")) break;
      t->kids.push_back(expression());
    }
    return t;
  }

  NodePtr expression(bool with_condition = true) {
    Deeper d(*this);
    NodePtr e = or_expr();
    if (!with_condition || !is_name("if")) return e;
    NodePtr c = node(Node::K::Cond);
    ++i_;
    c->kids.push_back(e);
    c->kids.push_back(or_expr());
    c->kids.push_back(accept_name("else") ? expression() : nullptr);
    return c;
  }

  NodePtr binary(Node::K k, NodePtr a, NodePtr b, int op = 0) {
    NodePtr n = node(k);
    n->op = op;
    n->kids = {std::move(a), std::move(b)};
    return n;
  }

  NodePtr or_expr() {
    NodePtr e = and_expr();
    while (accept_name("or")) e = binary(Node::K::Or, e, and_expr());
    return e;
  }
  NodePtr and_expr() {
    NodePtr e = not_expr();
    while (accept_name("and")) e = binary(Node::K::And, e, not_expr());
    return e;
  }
  NodePtr not_expr() {
    if (!is_name("not")) return compare();
    NodePtr n = node(Node::K::Unary);
    ++i_;
    Deeper d(*this);
    n->op = '!';
    n->kids.push_back(not_expr());
    return n;
  }

  NodePtr compare() {
    NodePtr first = math1();
    NodePtr n;
    for (;;) {
      int op = 0;
      static const std::pair<const char*, int> table[] = {{"==", Eq}, {"!=", Ne}, {"<", Lt}, {"<=", Le}, {">", Gt}, {">=", Ge}};
      for (const auto& [text, code] : table)
        if (is_op(text)) op = code;
      if (op) {
        ++i_;
      } else if (accept_name("in")) {
        op = In;
      } else if (is_name("not") && is_name("in", 1)) {
        i_ += 2;
        op = NotIn;
      } else {
        return n ? n : first;
      }
      if (!n) {
        n = node(Node::K::Compare);
        n->kids.push_back(first);
      }
      n->ops.push_back(op);
      n->kids.push_back(math1());
    }
  }
  NodePtr math1() {
    NodePtr e = concat();
    for (;;) {
      if (accept_op("+")) {
        e = binary(Node::K::Binary, e, concat(), Add);
      } else if (accept_op("-")) {
        e = binary(Node::K::Binary, e, concat(), Sub);
      } else {
        return e;
      }
    }
  }
  NodePtr concat() {
    NodePtr e = math2();
    if (!is_op("~")) return e;
    NodePtr n = node(Node::K::Concat);
    n->kids.push_back(e);
    while (accept_op("~")) n->kids.push_back(math2());
    return n;
  }
  NodePtr math2() {
    NodePtr e = power();
    for (;;) {
      static const std::pair<const char*, int> table[] = {{"*", Mul}, {"/", Div}, {"//", FloorDiv}, {"%", Mod}};
      int op = 0;
      for (const auto& [text, code] : table)
        if (is_op(text)) op = code;
      if (!op) return e;
      ++i_;
      e = binary(Node::K::Binary, e, power(), op);
    }
  }
  NodePtr power() {
    NodePtr e = unary(true);
    while (accept_op("**")) e = binary(Node::K::Binary, e, unary(true), Pow);
    return e;
  }
  NodePtr unary(bool with_filter) {
    Deeper d(*this);
    NodePtr e;
    if (is_op("-") || is_op("+")) {
      e = node(Node::K::Unary);
      e->op = next().s[0];
      e->kids.push_back(unary(false));
    } else {
      e = postfix(primary());
    }
    return with_filter ? filter_expr(e) : e;
  }

  NodePtr primary() {
    const Token& t = peek();
    if (t.t == Token::Name) return name_or_constant();
    if (t.t == Token::String) {
      NodePtr n = node(Node::K::Literal);
      std::string s;
      while (peek().t == Token::String) s += next().s;
      n->value = Value::string(std::move(s));
      return n;
    }
    if (t.t == Token::Int || t.t == Token::Float) {
      NodePtr n = node(Node::K::Literal);
      n->value = t.t == Token::Int ? Value::integer(t.i) : Value::number(t.f);
      ++i_;
      return n;
    }
    if (accept_op("(")) {
      if (accept_op(")")) return node(Node::K::Tuple);
      NodePtr e = tuple_or_expression();
      expect_op(")");
      return e;
    }
    if (is_op("[")) return list_literal();
    if (is_op("{")) return dict_literal();
    fail("expected an expression, found " + describe(t));
  }
  NodePtr name_or_constant() {
    NodePtr n = node(Node::K::Literal);
    const std::string& s = next().s;
    if (s == "true" || s == "True") {
      n->value = Value::boolean(true);
    } else if (s == "false" || s == "False") {
      n->value = Value::boolean(false);
    } else if (s == "none" || s == "None") {
      n->value = Value::none();
    } else {
      n->kind = Node::K::Name;
      n->name = s;
    }
    return n;
  }
  NodePtr list_literal() {
    NodePtr n = node(Node::K::List);
    ++i_;
    while (!accept_op("]")) {
      if (!n->kids.empty()) expect_op(",");
      if (accept_op("]")) break;
      n->kids.push_back(expression());
    }
    return n;
  }
  NodePtr dict_literal() {
    NodePtr n = node(Node::K::DictLit);
    ++i_;
    while (!accept_op("}")) {
      if (!n->kids.empty()) expect_op(",");
      if (accept_op("}")) break;
      n->kids.push_back(expression());
      expect_op(":");
      n->kids.push_back(expression());
    }
    return n;
  }

  NodePtr postfix(NodePtr e) {
    for (;;) {
      if (is_op(".")) {
        NodePtr n = node(Node::K::Attr);
        ++i_;
        n->kids.push_back(e);
        if (peek().t == Token::Int) {
          n->kind = Node::K::Item;
          NodePtr idx = node(Node::K::Literal);
          idx->value = Value::integer(next().i);
          n->kids.push_back(idx);
        } else {
          n->name = expect_name();
        }
        e = n;
      } else if (is_op("[")) {
        e = subscript(e);
      } else if (is_op("(")) {
        e = call(e);
      } else {
        return e;
      }
    }
  }
  NodePtr subscript(NodePtr e) {
    NodePtr n = node(Node::K::Item);
    ++i_;
    n->kids.push_back(e);
    NodePtr parts[3] = {nullptr, nullptr, nullptr};
    int part = 0;
    bool slice = false;
    for (;;) {
      if (is_op(":")) {
        slice = true;
        if (++part > 2) fail("a slice takes at most three parts");
        ++i_;
        continue;
      }
      if (accept_op("]")) break;
      if (parts[part]) fail("expected ':' or ']' in a subscript, found " + describe(peek()));
      parts[part] = expression();
    }
    if (slice) {
      n->kind = Node::K::Slice;
      n->kids.insert(n->kids.end(), {parts[0], parts[1], parts[2]});
    } else {
      if (!parts[0]) fail("an empty subscript []");
      n->kids.push_back(parts[0]);
    }
    return n;
  }
  // "(" args ")" onto n (kids after n->kids' first operand; keyword names in n->names).
  void arguments(Node& n) {
    expect_op("(");
    std::vector<NodePtr> kw;
    while (!accept_op(")")) {
      if (peek().t == Token::Name && is_op("=", 1)) {
        n.names.push_back(next().s);
        ++i_;
        kw.push_back(expression());
      } else {
        if (!kw.empty()) fail("a positional argument after a keyword argument");
        n.kids.push_back(expression());
      }
      if (!accept_op(",")) {
        expect_op(")");
        break;
      }
    }
    n.kids.insert(n.kids.end(), kw.begin(), kw.end());
  }
  NodePtr call(NodePtr e) {
    NodePtr n = node(Node::K::Call);
    n->line = e->line;  // errors point at the callee, not at its "("
    n->col = e->col;
    n->kids.push_back(e);
    arguments(*n);
    return n;
  }

  NodePtr filter(NodePtr operand) {
    NodePtr n = node(Node::K::Filter);
    n->name = dotted_name();
    n->kids.push_back(operand);
    if (is_op("(")) arguments(*n);
    return n;
  }
  NodePtr filter_expr(NodePtr e) {
    for (;;) {
      if (accept_op("|")) {
        e = filter(e);
      } else if (is_name("is")) {
        e = test(e);
      } else if (is_op("(")) {
        e = call(e);
      } else {
        return e;
      }
    }
  }
  NodePtr test(NodePtr operand) {
    NodePtr n = node(Node::K::Test);
    ++i_;
    n->negated = accept_name("not");
    n->name = dotted_name();
    n->kids.push_back(operand);
    if (is_op("(")) {
      arguments(*n);
      return n;
    }
    // One argument without parentheses: `is divisibleby 3`, `is equalto 'user'`.
    const Token& t = peek();
    const bool starts_arg = t.t == Token::String || t.t == Token::Int || t.t == Token::Float || is_op("[") || is_op("{") ||
                            (t.t == Token::Name && t.s != "else" && t.s != "or" && t.s != "and");
    if (is_name("is")) fail("tests cannot be chained with 'is'");
    if (starts_arg) n->kids.push_back(postfix(primary()));
    return n;
  }
};

}  // namespace

NodePtr parse_template(const std::string& source, const std::string& name) {
  std::vector<int> line_starts;
  std::vector<Token> toks = lex(source, name, &line_starts);
  return Parser(std::move(toks), std::move(line_starts), name).parse();
}

}  // namespace grpo::jinja
