// jinja_impl.h: the engine's inside (jinja.h is its outside): the syntax tree the parser builds, the
// interpreter's frames, and the Python semantics of values (printing, equality, order, truth) that
// the evaluator (eval.cpp) and the built-in filters, tests and methods (builtins.cpp) share.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "grpo/jinja/jinja.h"

namespace grpo::jinja {

using Kind = Value::Kind;

// Positional and keyword arguments of a call, filter or test.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // The argument named `name`, or the `index`-th positional one, or `fallback`.
  Value get(size_t index, const char* name, Value fallback = {}) const;
  size_t count() const { return pos.size() + kw.size(); }
};

struct Interp;
struct Func {
  std::string name;
  std::function<Value(Interp&, const Args&)> call;
};

// ---------------------------------------------------------------------------------------------
// Syntax tree. One node type; each kind uses the fields its comment names.
struct Node;
using NodePtr = std::shared_ptr<Node>;
struct Node {
  enum class K : uint8_t {
    // statements
    Template,     // body
    Data,         // value (a literal string)
    Print,        // kids[0]
    If,           // kids: conditions; bodies: one per condition, else_body
    For,          // names: targets; kids[0] iterable, kids[1] filter (or null); body, else_body
    Set,          // names: targets (or name + attr for ns.attr); kids[0] value
    SetBlock,     // name; body; kids: filters (Filter nodes with a null operand)
    Macro,        // name; names: parameters; kids: defaults (null where none); body
    Break,        //
    Continue,     //
    FilterBlock,  // kids[0]: the Filter chain over a null operand; body
    // expressions
    Literal,  // value
    Name,     // name
    Attr,     // kids[0].name
    Item,     // kids[0][kids[1]]
    Slice,    // kids[0][kids[1]:kids[2]:kids[3]] (null where omitted)
    Call,     // kids[0](kids[1..] positional, then names.size() keyword args last)
    Filter,   // name; kids[0] operand (null in a filter block), then args as Call
    Test,     // name; negated; kids[0] operand, then args as Call
    Unary,    // op: '-', '+', '!' (not); kids[0]
    Binary,   // op; kids[0], kids[1]
    Compare,  // kids[0], then (ops[i], kids[i + 1])
    And,
    Or,
    Cond,     // kids: then, condition, else (null: undefined)
    List,     // kids
    Tuple,    // kids
    DictLit,  // kids: key, value, key, value...
    Concat,   // kids joined with ~
  };
  K kind;
  int line = 0, col = 0;
  std::string name, attr;
  Value value;
  bool negated = false;
  int op = 0;
  std::vector<int> ops;
  std::vector<std::string> names;
  std::vector<NodePtr> kids, body, else_body;
  std::vector<std::vector<NodePtr>> bodies;
};

// Binary and comparison operators (Node::op / Node::ops).
enum Op : int { Add = 1, Sub, Mul, Div, FloorDiv, Mod, Pow, Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

NodePtr parse_template(const std::string& source, const std::string& name);

// ---------------------------------------------------------------------------------------------
// Frames: a name -> value map with a parent; the globals frame at the root.
struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;
  const Value* find(std::string_view n) const;
  void set(const std::string& n, Value v);
};

// Limits of jinja.h.
constexpr int kMaxParseDepth = 256;
constexpr int kMaxCallDepth = 100;
constexpr int64_t kMaxRange = 100'000;

struct Interp {
  std::string source;        // the template's name, for errors
  const Node* at = nullptr;  // the node being evaluated, for errors
  Limits limits;
  int depth = 0;       // macro calls
  int eval_depth = 0;  // nested evaluations
  int64_t steps = 0;
  [[noreturn]] void fail(const std::string& what) const;
  void step();
  // Calls a callable value (macro, global, bound method) with evaluated arguments.
  Value call(const Value& fn, const Args& args);
};

// ---------------------------------------------------------------------------------------------
// Python semantics of values (value.cpp).
bool truthy(const Value& v);
std::string type_name(const Value& v);  // Python's: 'str', 'dict', 'NoneType', ...
Text to_text(const Value& v);           // str(v): what {{ v }} prints
std::string repr(const Value& v);       // repr(v), as in a printed list
std::string float_repr(double d);       // repr(float)
bool equal(const Value& a, const Value& b);
// a < b, Python's order (numbers, strings, lists); other pairs are a TypeError.
bool less(Interp& in, const Value& a, const Value& b);
// Python's json.dumps of a value (transformers' tojson). Undefined and callables are errors.
std::string to_json(Interp& in, const Value& v, bool ensure_ascii, int indent, const std::string& item_sep, const std::string& key_sep,
                    bool sort_keys);
// The label of a value's strings (the first labelled span found), for text made from a whole value.
int label_of(const Value& v);
// Python len(): code points for strings.
int64_t length(Interp& in, const Value& v);
// Iteration: list items, dict keys, string characters; Undefined iterates as empty.
std::vector<Value> items_of(Interp& in, const Value& v);

// UTF-8 helpers: byte offsets of each code point (plus the end), and Python's whitespace.
std::vector<size_t> codepoint_offsets(const std::string& s);
bool py_space(uint32_t cp);
uint32_t decode_utf8(const std::string& s, size_t& pos);

// Python's str.strip/split/replace and case mappings over code points, keeping provenance (methods.cpp).
// `chars`/`sep` null: whitespace. case_map modes: 'u' upper, 'l' lower, 'c' capitalize, 't' title.
Text py_strip(const Text& t, const std::string* chars, bool left, bool right);
std::vector<Value> py_split(Interp& in, const Text& t, const std::string* sep, int64_t maxsplit, bool from_right);
Text py_replace(const Text& t, const Text& old, const Text& repl, int64_t count);
Text case_map(const Text& t, char mode);

// ---------------------------------------------------------------------------------------------
// Built-ins (builtins.cpp): filters, tests, the methods of str/dict/list values, and globals.
Value apply_filter(Interp& in, const std::string& name, const Value& v, const Args& args);
bool apply_test(Interp& in, const std::string& name, const Value& v, const Args& args);
// `obj.name` as a method (str.split, dict.items, ...), or Undefined when obj has no such method.
Value method_of(Interp& in, const Value& obj, const std::string& name);
const Value* global(const std::string& name);
bool has_filter(const std::string& name);
bool has_test(const std::string& name);

}  // namespace grpo::jinja
