// eval.cpp: the interpreter. Statements write into the current output (a macro call or a block set
// captures its own); expressions evaluate with jinja2's rules: attribute lookup tries a value's
// methods before a dict's keys (`d.items` is the method), subscription the reverse; a missing name or
// key is Undefined, which prints as "" and fails when looked into; and/or return an operand; every
// for-loop iteration is a frame of its own with `loop`; macros see the frame they were defined in.
#include <algorithm>
#include <cmath>
#include <optional>

#include "jinja_impl.h"

namespace grpo::jinja {

void Interp::fail(const std::string& what) const {
  const std::string where = at ? ":" + std::to_string(at->line) + ":" + std::to_string(at->col) : "";
  throw TemplateError(source + where + ": " + what);
}

void Interp::step() {
  if (++steps > limits.max_steps) fail("the template ran " + std::to_string(limits.max_steps) + " evaluation steps without finishing");
}

Value Interp::call(const Value& fn, const Args& args) {
  if (fn.is(Kind::Undefined)) fail((fn.hint ? *fn.hint : std::string("the callee is undefined")) + ", so it cannot be called");
  if (!fn.is(Kind::Func)) fail("'" + type_name(fn) + "' object is not callable");
  return fn.fn->call(*this, args);
}

namespace {

enum class Flow { Normal, Break, Continue };
using ScopePtr = std::shared_ptr<Scope>;

struct Evaluator;

// Sets Interp::at for the duration of one node's evaluation.
struct At {
  Interp& in;
  const Node* saved;
  At(Interp& interp, const Node& n) : in(interp), saved(interp.at) {
    in.at = &n;
    in.step();
    if (++in.eval_depth > in.limits.max_depth)
      in.fail("the template nests its evaluation deeper than " + std::to_string(in.limits.max_depth) + " levels");
  }
  ~At() {
    in.at = saved;
    --in.eval_depth;
  }
};

struct Evaluator {
  Interp& in;
  Text* out;

  [[noreturn]] void undefined_error(const Value& v) { in.fail(v.hint ? *v.hint : "a value is undefined"); }

  // ---- lookups
  Value lookup(const std::string& name, const Scope& sc) {
    if (const Value* v = sc.find(name)) return *v;
    if (const Value* g = global(name)) return *g;
    return Value::undefined("'" + name + "' is undefined");
  }
  Value getattr(const Value& obj, const std::string& name) {
    if (obj.is(Kind::Undefined)) undefined_error(obj);
    if (obj.is(Kind::Dict) && obj.dict->is_namespace) {
      if (const Value* v = obj.dict->find(name)) return *v;
      return Value::undefined("'Namespace object' has no attribute '" + name + "'");
    }
    Value m = method_of(in, obj, name);
    if (!m.is(Kind::Undefined)) return m;
    if (obj.is(Kind::Dict))
      if (const Value* v = obj.dict->find(name)) return *v;
    return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
  }
  Value getitem(const Value& obj, const Value& key) {
    if (obj.is(Kind::Undefined)) undefined_error(obj);
    if (obj.is(Kind::Dict) && key.is(Kind::Str)) {
      if (const Value* v = obj.dict->find(key.str->s)) return *v;
      if (obj.dict->is_namespace) return Value::undefined("'Namespace object' has no attribute '" + key.str->s + "'");
    }
    if ((obj.is(Kind::List) || obj.is(Kind::Str)) && (key.is(Kind::Int) || key.is(Kind::Bool))) {
      const int64_t n = length(in, obj);
      int64_t k = key.is(Kind::Int) ? key.i : key.b;
      if (k < 0) k += n;
      if (k < 0 || k >= n) return Value::undefined(type_name(obj) + " index out of range");
      if (obj.is(Kind::List)) return (*obj.list)[static_cast<size_t>(k)];
      if (is_ascii(obj.str->s)) return Value::string(obj.str->slice(static_cast<size_t>(k), static_cast<size_t>(k) + 1));
      const std::vector<size_t> at = codepoint_offsets(obj.str->s);
      return Value::string(obj.str->slice(at[static_cast<size_t>(k)], at[static_cast<size_t>(k) + 1]));
    }
    if (key.is(Kind::Str)) return getattr(obj, key.str->s);
    return Value::undefined("'" + type_name(obj) + " object' has no item " + repr(key));
  }
  Value slice(const Value& obj, const Value& a, const Value& b, const Value& c) {
    if (obj.is(Kind::Undefined)) undefined_error(obj);
    if (!obj.is(Kind::List) && !obj.is(Kind::Str)) in.fail("'" + type_name(obj) + "' object is not subscriptable");
    auto index = [&](const Value& v, const char* what) -> std::optional<int64_t> {
      if (v.is(Kind::None) || v.is(Kind::Undefined)) return std::nullopt;
      if (v.is(Kind::Int)) return v.i;
      if (v.is(Kind::Bool)) return v.b ? 1 : 0;
      in.fail(std::string("slice ") + what + " must be an integer or None, found '" + type_name(v) + "'");
    };
    const int64_t n = length(in, obj);
    const int64_t step = index(c, "step").value_or(1);
    if (step == 0) in.fail("slice step cannot be zero");
    auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
      if (!v) return dflt;
      int64_t k = *v < 0 ? *v + n : *v;
      if (step > 0) return std::clamp<int64_t>(k, 0, n);
      return std::clamp<int64_t>(k, -1, n - 1);
    };
    const int64_t start = clamp(index(a, "start"), step > 0 ? 0 : n - 1), stop = clamp(index(b, "stop"), step > 0 ? n : -1);
    std::vector<int64_t> picks;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) picks.push_back(k);
    if (obj.is(Kind::List)) {
      std::vector<Value> items;
      for (int64_t k : picks) items.push_back((*obj.list)[static_cast<size_t>(k)]);
      return Value::make_list(std::move(items), obj.tuple);
    }
    const std::vector<size_t> at = codepoint_offsets(obj.str->s);
    Text t;
    for (int64_t k : picks) t.append(obj.str->slice(at[static_cast<size_t>(k)], at[static_cast<size_t>(k) + 1]));
    return Value::string(std::move(t));
  }

  // ---- expressions
  Args arguments(const Node& n, Scope& sc) {
    Args args;
    const size_t n_kw = n.names.size(), n_pos = n.kids.size() - 1 - n_kw;
    for (size_t k = 0; k < n_pos; ++k) args.pos.push_back(eval(*n.kids[1 + k], sc));
    for (size_t k = 0; k < n_kw; ++k) args.kw.emplace_back(n.names[k], eval(*n.kids[1 + n_pos + k], sc));
    return args;
  }
  Value eval(const Node& n, Scope& sc) {
    At at(in, n);
    switch (n.kind) {
      case Node::K::Literal:
        return n.value;
      case Node::K::Name:
        return lookup(n.name, sc);
      case Node::K::Attr:
        return getattr(eval(*n.kids[0], sc), n.name);
      case Node::K::Item:
        return getitem(eval(*n.kids[0], sc), eval(*n.kids[1], sc));
      case Node::K::Slice:
        return slice(eval(*n.kids[0], sc), opt(n.kids[1], sc), opt(n.kids[2], sc), opt(n.kids[3], sc));
      case Node::K::Call: {
        const Value fn = eval(*n.kids[0], sc);
        return in.call(fn, arguments(n, sc));
      }
      case Node::K::Filter:
        return apply_filter(in, n.name, eval(*n.kids[0], sc), arguments(n, sc));
      case Node::K::Test:
        return Value::boolean(apply_test(in, n.name, eval(*n.kids[0], sc), arguments(n, sc)) != n.negated);
      case Node::K::Unary:
        return unary(n.op, eval(*n.kids[0], sc));
      case Node::K::Binary:
        return binary(n.op, eval(*n.kids[0], sc), eval(*n.kids[1], sc));
      case Node::K::Compare:
        return compare(n, sc);
      case Node::K::And: {
        Value a = eval(*n.kids[0], sc);
        return truthy(a) ? eval(*n.kids[1], sc) : a;
      }
      case Node::K::Or: {
        Value a = eval(*n.kids[0], sc);
        return truthy(a) ? a : eval(*n.kids[1], sc);
      }
      case Node::K::Cond:
        if (truthy(eval(*n.kids[1], sc))) return eval(*n.kids[0], sc);
        return n.kids[2] ? eval(*n.kids[2], sc) : Value::undefined("the condition was false and there is no else");
      default:
        return literal(n, sc);
    }
  }
  Value opt(const NodePtr& n, Scope& sc) { return n ? eval(*n, sc) : Value::none(); }
  Value literal(const Node& n, Scope& sc) {
    if (n.kind == Node::K::List || n.kind == Node::K::Tuple) {
      std::vector<Value> items;
      for (const NodePtr& k : n.kids) items.push_back(eval(*k, sc));
      return Value::make_list(std::move(items), n.kind == Node::K::Tuple);
    }
    if (n.kind == Node::K::DictLit) {
      auto d = std::make_shared<Dict>();
      for (size_t k = 0; k + 1 < n.kids.size(); k += 2) {
        const Value key = eval(*n.kids[k], sc);
        if (!key.is(Kind::Str)) in.fail("dict keys must be strings here, found '" + type_name(key) + "'");
        d->set(key.str->s, eval(*n.kids[k + 1], sc));
      }
      return Value::make_dict(std::move(d));
    }
    if (n.kind == Node::K::Concat) {
      Text t;
      for (const NodePtr& k : n.kids) t.append(to_text(eval(*k, sc)));
      return Value::string(std::move(t));
    }
    in.fail("not an expression");
  }

  Value unary(int op, const Value& v) {
    if (op == '!') return Value::boolean(!truthy(v));
    if (v.is(Kind::Int) || v.is(Kind::Bool))
      return Value::integer(op == '-' ? -(v.is(Kind::Int) ? v.i : v.b) : (v.is(Kind::Int) ? v.i : v.b));
    if (v.is(Kind::Float)) return Value::number(op == '-' ? -v.f : v.f);
    if (v.is(Kind::Undefined)) undefined_error(v);
    in.fail(std::string("bad operand type for unary ") + static_cast<char>(op) + ": '" + type_name(v) + "'");
  }

  Value binary(int op, const Value& a, const Value& b);
  Value compare(const Node& n, Scope& sc);
  bool contains(const Value& container, const Value& item);

  // ---- statements
  Flow exec(const std::vector<NodePtr>& body, const ScopePtr& sc);
  Flow exec_one(const Node& n, const ScopePtr& sc);
  Flow exec_for(const Node& n, const ScopePtr& sc);
  void exec_set(const Node& n, const ScopePtr& sc);
  Text capture(const std::vector<NodePtr>& body, const ScopePtr& sc);
  // A chain of Filter nodes whose innermost operand is null, applied to `v`.
  Value filter_chain(const Node& f, Value v, Scope& sc) {
    if (f.kids[0]) v = filter_chain(*f.kids[0], std::move(v), sc);
    return apply_filter(in, f.name, v, arguments(f, sc));
  }
  void define_macro(const Node& n, const ScopePtr& sc);
  void write(const Text& t) {
    out->append(t);
    if (out->s.size() > in.limits.max_output) in.fail("the output grew past " + std::to_string(in.limits.max_output) + " bytes");
  }
};

// ---------------------------------------------------------------------------------------------
// Operators

namespace {

bool is_numeric(const Value& v) {
  return v.is(Kind::Int) || v.is(Kind::Float) || v.is(Kind::Bool);
}
double as_num(const Value& v) {
  return v.is(Kind::Float) ? v.f : v.is(Kind::Int) ? static_cast<double>(v.i) : v.b;
}
int64_t whole(const Value& v) {
  return v.is(Kind::Int) ? v.i : v.b;
}
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

Value Evaluator::binary(int op, const Value& a, const Value& b) {
  if (a.is(Kind::Undefined)) undefined_error(a);
  if (b.is(Kind::Undefined)) undefined_error(b);
  const bool ints = (a.is(Kind::Int) || a.is(Kind::Bool)) && (b.is(Kind::Int) || b.is(Kind::Bool));
  if (is_numeric(a) && is_numeric(b)) {
    const double x = as_num(a), y = as_num(b);
    if ((op == Div || op == FloorDiv || op == Mod) && y == 0) in.fail(op == Mod ? "integer modulo by zero" : "division by zero");
    switch (op) {
      case Add:
        return ints ? Value::integer(whole(a) + whole(b)) : Value::number(x + y);
      case Sub:
        return ints ? Value::integer(whole(a) - whole(b)) : Value::number(x - y);
      case Mul:
        return ints ? Value::integer(whole(a) * whole(b)) : Value::number(x * y);
      case Div:
        return Value::number(x / y);
      case FloorDiv:
        return ints ? Value::integer(floor_div(whole(a), whole(b))) : Value::number(std::floor(x / y));
      case Mod:
        if (ints) return Value::integer(whole(a) - floor_div(whole(a), whole(b)) * whole(b));
        return Value::number(x - std::floor(x / y) * y);
      case Pow:
        if (ints && whole(b) >= 0) {
          int64_t r = 1;
          for (int64_t k = 0; k < whole(b) && k < 64; ++k) r *= whole(a);
          return Value::integer(r);
        }
        return Value::number(std::pow(x, y));
    }
  }
  if (op == Add && a.is(Kind::Str) && b.is(Kind::Str)) {
    Text t = *a.str;
    t.append(*b.str);
    return Value::string(std::move(t));
  }
  if (op == Add && a.is(Kind::List) && b.is(Kind::List) && a.tuple == b.tuple) {
    std::vector<Value> items = *a.list;
    items.insert(items.end(), b.list->begin(), b.list->end());
    return Value::make_list(std::move(items), a.tuple);
  }
  if (op == Mul && (a.is(Kind::Str) || a.is(Kind::List)) && (b.is(Kind::Int) || b.is(Kind::Bool))) return binary(Mul, b, a);
  if (op == Mul && (a.is(Kind::Int) || a.is(Kind::Bool)) && (b.is(Kind::Str) || b.is(Kind::List))) {
    const int64_t times = std::max<int64_t>(0, whole(a));
    if (static_cast<double>(times) * static_cast<double>(b.is(Kind::Str) ? b.str->s.size() : b.list->size()) > in.limits.max_output)
      in.fail("a repetition larger than " + std::to_string(in.limits.max_output) + " bytes");
    if (b.is(Kind::Str)) {
      Text t;
      for (int64_t k = 0; k < times; ++k) t.append(*b.str);
      return Value::string(std::move(t));
    }
    std::vector<Value> items;
    for (int64_t k = 0; k < times; ++k) items.insert(items.end(), b.list->begin(), b.list->end());
    return Value::make_list(std::move(items), b.tuple);
  }
  static const char* names[] = {"", "+", "-", "*", "/", "//", "%", "**"};
  in.fail(std::string("unsupported operand type(s) for ") + names[op] + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

bool Evaluator::contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case Kind::Undefined:
      return false;
    case Kind::Str:
      if (!item.is(Kind::Str)) in.fail("'in <string>' requires string as left operand, not " + type_name(item));
      return container.str->s.find(item.str->s) != std::string::npos;
    case Kind::List:
      for (const Value& v : *container.list)
        if (equal(v, item)) return true;
      return false;
    case Kind::Dict:
      return item.is(Kind::Str) && container.dict->find(item.str->s);
    default:
      in.fail("argument of type '" + type_name(container) + "' is not iterable");
  }
}

Value Evaluator::compare(const Node& n, Scope& sc) {
  Value left = eval(*n.kids[0], sc);
  for (size_t k = 0; k < n.ops.size(); ++k) {
    Value right = eval(*n.kids[k + 1], sc);
    bool ok = false;
    switch (n.ops[k]) {
      case Eq:
        ok = equal(left, right);
        break;
      case Ne:
        ok = !equal(left, right);
        break;
      case Lt:
        ok = less(in, left, right);
        break;
      case Le:
        ok = !less(in, right, left);
        break;
      case Gt:
        ok = less(in, right, left);
        break;
      case Ge:
        ok = !less(in, left, right);
        break;
      case In:
        ok = contains(right, left);
        break;
      default:
        ok = !contains(right, left);
    }
    if (!ok) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

// ---------------------------------------------------------------------------------------------
// Statements

Flow Evaluator::exec(const std::vector<NodePtr>& body, const ScopePtr& sc) {
  for (const NodePtr& n : body) {
    const Flow f = exec_one(*n, sc);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Text Evaluator::capture(const std::vector<NodePtr>& body, const ScopePtr& sc) {
  Text local;
  Text* saved = out;
  out = &local;
  exec(body, sc);
  out = saved;
  return local;
}

Flow Evaluator::exec_one(const Node& n, const ScopePtr& sc) {
  At at(in, n);
  switch (n.kind) {
    case Node::K::Data:
      write(*n.value.str);
      return Flow::Normal;
    case Node::K::Print:
      write(to_text(eval(*n.kids[0], *sc)));
      return Flow::Normal;
    case Node::K::If:
      for (size_t k = 0; k < n.kids.size(); ++k)
        if (truthy(eval(*n.kids[k], *sc))) return exec(n.bodies[k], sc);
      return exec(n.else_body, sc);
    case Node::K::For:
      return exec_for(n, sc);
    case Node::K::Set:
    case Node::K::SetBlock:
      exec_set(n, sc);
      return Flow::Normal;
    case Node::K::Macro:
      define_macro(n, sc);
      return Flow::Normal;
    case Node::K::Break:
      return Flow::Break;
    case Node::K::Continue:
      return Flow::Continue;
    case Node::K::FilterBlock: {
      write(to_text(filter_chain(*n.kids[0], Value::string(capture(n.body, sc)), *sc)));
      return Flow::Normal;
    }
    default:
      return exec(n.body, sc);
  }
}

}  // namespace

namespace {

// Binds `names` to `v`: one name takes it whole, several unpack a sequence of as many items.
void bind_targets(Interp& in, Scope& sc, const std::vector<std::string>& names, const Value& v) {
  if (names.size() == 1) {
    sc.set(names[0], v);
    return;
  }
  const std::vector<Value> items = items_of(in, v);
  if (items.size() != names.size())
    in.fail("cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(names.size()) + " names");
  for (size_t k = 0; k < names.size(); ++k) sc.set(names[k], items[k]);
}

Value loop_value(const std::vector<Value>& items, size_t k) {
  const int64_t n = static_cast<int64_t>(items.size()), i = static_cast<int64_t>(k);
  auto d = std::make_shared<Dict>();
  d->items.reserve(10);
  d->items.emplace_back("index", Value::integer(i + 1));
  d->items.emplace_back("index0", Value::integer(i));
  d->items.emplace_back("revindex", Value::integer(n - i));
  d->items.emplace_back("revindex0", Value::integer(n - i - 1));
  d->items.emplace_back("first", Value::boolean(i == 0));
  d->items.emplace_back("last", Value::boolean(i == n - 1));
  d->items.emplace_back("length", Value::integer(n));
  d->items.emplace_back("depth", Value::integer(1));
  d->items.emplace_back("depth0", Value::integer(0));
  d->items.emplace_back("previtem", k > 0 ? items[k - 1] : Value::undefined("there is no previous item"));
  d->items.emplace_back("nextitem", i + 1 < n ? items[k + 1] : Value::undefined("there is no next item"));
  d->is_namespace = true;  // attribute lookups read its keys, never dict methods
  return Value::make_dict(std::move(d));
}

}  // namespace

namespace {

Flow Evaluator::exec_for(const Node& n, const ScopePtr& sc) {
  std::vector<Value> items = items_of(in, eval(*n.kids[0], *sc));
  if (n.kids[1]) {
    std::vector<Value> kept;
    for (const Value& item : items) {
      Scope probe;
      probe.parent = sc;
      bind_targets(in, probe, n.names, item);
      if (truthy(eval(*n.kids[1], probe))) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(n.else_body, sc);
  for (size_t k = 0; k < items.size(); ++k) {
    in.step();
    auto frame = std::make_shared<Scope>();
    frame->parent = sc;
    frame->vars.reserve(4);
    bind_targets(in, *frame, n.names, items[k]);
    frame->vars.emplace_back("loop", loop_value(items, k));
    if (exec(n.body, frame) == Flow::Break) break;
  }
  return Flow::Normal;
}

void Evaluator::exec_set(const Node& n, const ScopePtr& sc) {
  if (n.kind == Node::K::SetBlock) {
    Value v = Value::string(capture(n.body, sc));
    for (const NodePtr& f : n.kids) v = filter_chain(*f, std::move(v), *sc);
    sc->set(n.name, std::move(v));
    return;
  }
  Value v = eval(*n.kids[0], *sc);
  if (n.names.empty()) {
    const Value target = lookup(n.name, *sc);
    if (!target.is(Kind::Dict) || !target.dict->is_namespace)
      in.fail("cannot assign attribute '" + n.attr + "' on '" + n.name + "': only namespace() objects take attributes");
    target.dict->set(n.attr, std::move(v));
    return;
  }
  bind_targets(in, *sc, n.names, v);
}

void Evaluator::define_macro(const Node& n, const ScopePtr& sc) {
  auto fn = std::make_shared<Func>();
  fn->name = n.name;
  const Node* node = &n;
  std::weak_ptr<Scope> defined_in = sc;
  fn->call = [node, defined_in](Interp& in, const Args& args) {
    if (in.depth >= kMaxCallDepth) in.fail("macro '" + node->name + "' recursed deeper than " + std::to_string(kMaxCallDepth) + " calls");
    auto frame = std::make_shared<Scope>();
    frame->parent = defined_in.lock();
    if (args.pos.size() > node->names.size())
      in.fail("macro '" + node->name + "' takes " + std::to_string(node->names.size()) + " arguments, " + std::to_string(args.pos.size()) +
              " given");
    for (const auto& kw : args.kw)
      if (std::find(node->names.begin(), node->names.end(), kw.first) == node->names.end())
        in.fail("macro '" + node->name + "' takes no keyword argument '" + kw.first + "'");
    Text out;
    Evaluator ev{in, &out};
    for (size_t k = 0; k < node->names.size(); ++k) {
      const std::string& name = node->names[k];
      const bool given =
          k < args.pos.size() || std::any_of(args.kw.begin(), args.kw.end(), [&](const auto& kw) { return kw.first == name; });
      Value v = Value::undefined("'" + name + "' is undefined");
      if (given) {
        v = args.get(k, name.c_str());
      } else if (node->kids[k]) {
        v = ev.eval(*node->kids[k], *frame);
      }
      frame->vars.emplace_back(name, std::move(v));
    }
    ++in.depth;
    ev.exec(node->body, frame);
    --in.depth;
    return Value::string(std::move(out));
  };
  Value v;
  v.kind = Kind::Func;
  v.fn = std::move(fn);
  sc->set(n.name, std::move(v));
}

}  // namespace

Value Args::get(size_t index, const char* name, Value fallback) const {
  for (const auto& [k, v] : kw)
    if (k == name) return v;
  if (index < pos.size()) return pos[index];
  return fallback;
}

// ---------------------------------------------------------------------------------------------
// Templates

Template::Template(const std::string& source_text, const std::string& name) : name_(name), root_(parse_template(source_text, name)) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

Text Template::render(const Vars& vars, const Limits& limits) const {
  Interp in;
  in.source = name_;
  in.limits = limits;
  auto top = std::make_shared<Scope>();
  top->vars = vars;
  Text out;
  Evaluator ev{in, &out};
  ev.exec(root_->body, top);
  // Macros hold their frame weakly; nothing outlives the render.
  return out;
}

}  // namespace grpo::jinja
