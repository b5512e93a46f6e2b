// tests_globals.cpp: jinja2's tests (`x is defined`, `n is divisibleby 3`, ...) and the globals of
// transformers' environment: range (bounded as the sandbox bounds it), namespace, dict,
// raise_exception (the template's own error, passed to the user as written) and strftime_now.
#include <ctime>
#include <map>

#include "jinja_impl.h"

namespace grpo::jinja {

namespace {

using TestFn = bool (*)(Interp&, const Value&, const Args&);

bool is_numeric(const Value& v) {
  return v.is(Kind::Int) || v.is(Kind::Float) || v.is(Kind::Bool);
}
Value arg0(const Args& a) {
  return a.get(0, "other");
}
bool t_in(Interp& in, const Value& v, const Args& a) {
  const Value seq = a.get(0, "seq");
  if (seq.is(Kind::Str)) {
    if (!v.is(Kind::Str)) in.fail("'in <string>' requires string as left operand, not " + type_name(v));
    return seq.str->s.find(v.str->s) != std::string::npos;
  }
  if (seq.is(Kind::Dict)) return v.is(Kind::Str) && seq.dict->find(v.str->s);
  for (const Value& x : items_of(in, seq))
    if (equal(x, v)) return true;
  return false;
}
bool whole(Interp& in, const Value& v, const char* test) {
  if (!v.is(Kind::Int) && !v.is(Kind::Bool)) in.fail(std::string("test '") + test + "' needs an integer, found '" + type_name(v) + "'");
  return true;
}

const std::map<std::string, TestFn>& tests() {
  static const std::map<std::string, TestFn> table = {
      {"defined", [](Interp&, const Value& v, const Args&) { return !v.is(Kind::Undefined); }},
      {"undefined", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Undefined); }},
      {"none", [](Interp&, const Value& v, const Args&) { return v.is(Kind::None); }},
      {"string", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Str); }},
      {"number", [](Interp&, const Value& v, const Args&) { return is_numeric(v); }},
      {"integer", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Int); }},
      {"float", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Float); }},
      {"boolean", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Bool); }},
      {"true", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Bool) && v.b; }},
      {"false", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Bool) && !v.b; }},
      {"mapping", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Dict) && !v.dict->is_namespace; }},
      {"iterable", [](Interp&, const Value& v,
                      const Args&) { return v.is(Kind::Str) || v.is(Kind::List) || v.is(Kind::Dict) || v.is(Kind::Undefined); }},
      {"sequence", [](Interp&, const Value& v,
                      const Args&) { return v.is(Kind::Str) || v.is(Kind::List) || v.is(Kind::Dict) || v.is(Kind::Undefined); }},
      {"callable", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Func); }},
      {"equalto", [](Interp&, const Value& v, const Args& a) { return equal(v, arg0(a)); }},
      {"eq", [](Interp&, const Value& v, const Args& a) { return equal(v, arg0(a)); }},
      {"==", [](Interp&, const Value& v, const Args& a) { return equal(v, arg0(a)); }},
      {"ne", [](Interp&, const Value& v, const Args& a) { return !equal(v, arg0(a)); }},
      {"!=", [](Interp&, const Value& v, const Args& a) { return !equal(v, arg0(a)); }},
      {"lt", [](Interp& in, const Value& v, const Args& a) { return less(in, v, arg0(a)); }},
      {"lessthan", [](Interp& in, const Value& v, const Args& a) { return less(in, v, arg0(a)); }},
      {"<", [](Interp& in, const Value& v, const Args& a) { return less(in, v, arg0(a)); }},
      {"gt", [](Interp& in, const Value& v, const Args& a) { return less(in, arg0(a), v); }},
      {"greaterthan", [](Interp& in, const Value& v, const Args& a) { return less(in, arg0(a), v); }},
      {">", [](Interp& in, const Value& v, const Args& a) { return less(in, arg0(a), v); }},
      {"le", [](Interp& in, const Value& v, const Args& a) { return !less(in, arg0(a), v); }},
      {"<=", [](Interp& in, const Value& v, const Args& a) { return !less(in, arg0(a), v); }},
      {"ge", [](Interp& in, const Value& v, const Args& a) { return !less(in, v, arg0(a)); }},
      {">=", [](Interp& in, const Value& v, const Args& a) { return !less(in, v, arg0(a)); }},
      {"in", t_in},
      {"odd", [](Interp& in, const Value& v, const Args&) { return whole(in, v, "odd") && ((v.is(Kind::Int) ? v.i : v.b) % 2 != 0); }},
      {"even", [](Interp& in, const Value& v, const Args&) { return whole(in, v, "even") && ((v.is(Kind::Int) ? v.i : v.b) % 2 == 0); }},
      {"divisibleby",
       [](Interp& in, const Value& v, const Args& a) {
         const Value n = a.get(0, "num");
         whole(in, v, "divisibleby");
         whole(in, n, "divisibleby");
         if ((n.is(Kind::Int) ? n.i : n.b) == 0) in.fail("integer modulo by zero");
         return (v.is(Kind::Int) ? v.i : v.b) % (n.is(Kind::Int) ? n.i : n.b) == 0;
       }},
      {"sameas",
       [](Interp&, const Value& v, const Args& a) {
         const Value o = arg0(a);
         if (v.kind != o.kind) return false;
         if (v.is(Kind::None) || v.is(Kind::Undefined)) return true;
         if (v.is(Kind::Bool) || v.is(Kind::Int)) return equal(v, o);
         return v.list == o.list && v.dict == o.dict && v.str == o.str && v.fn == o.fn;
       }},
      {"lower", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Str) && case_map(*v.str, 'l').s == v.str->s; }},
      {"upper", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Str) && case_map(*v.str, 'u').s == v.str->s; }},
      {"filter", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Str) && has_filter(v.str->s); }},
      {"test", [](Interp&, const Value& v, const Args&) { return v.is(Kind::Str) && has_test(v.str->s); }},
  };
  return table;
}

// ---------------------------------------------------------------------------------------------
// Globals

Value func(const std::string& name, std::function<Value(Interp&, const Args&)> f) {
  auto fn = std::make_shared<Func>();
  fn->name = name;
  fn->call = std::move(f);
  Value v;
  v.kind = Kind::Func;
  v.fn = std::move(fn);
  return v;
}

int64_t int_arg(Interp& in, const Value& v) {
  if (v.is(Kind::Int)) return v.i;
  if (v.is(Kind::Bool)) return v.b;
  in.fail("range: '" + type_name(v) + "' object cannot be interpreted as an integer");
}

Value g_range(Interp& in, const Args& a) {
  if (a.pos.empty() || a.pos.size() > 3) in.fail("range expected 1 to 3 arguments, got " + std::to_string(a.pos.size()));
  int64_t start = 0, stop = 0, step = 1;
  if (a.pos.size() == 1) {
    stop = int_arg(in, a.pos[0]);
  } else {
    start = int_arg(in, a.pos[0]);
    stop = int_arg(in, a.pos[1]);
    if (a.pos.size() == 3) step = int_arg(in, a.pos[2]);
  }
  if (step == 0) in.fail("range() arg 3 must not be zero");
  const int64_t n =
      step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0) : (start > stop ? (start - stop - step - 1) / -step : 0);
  if (n > kMaxRange) in.fail("range too big: " + std::to_string(n) + " items, the sandbox allows " + std::to_string(kMaxRange));
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) items.push_back(Value::integer(start + k * step));
  return Value::make_list(std::move(items));
}

// namespace(...) and dict(...): a dict (positional: a mapping or pairs) plus keyword arguments.
Value make_mapping(Interp& in, const Args& a, bool ns, const char* what) {
  auto d = std::make_shared<Dict>();
  d->is_namespace = ns;
  if (a.pos.size() > 1) in.fail(std::string(what) + " expected at most 1 positional argument");
  if (!a.pos.empty()) {
    const Value& src = a.pos[0];
    if (src.is(Kind::Dict)) {
      d->items = src.dict->items;
    } else {
      for (const Value& pair : items_of(in, src)) {
        if (!pair.is(Kind::List) || pair.list->size() != 2 || !(*pair.list)[0].is(Kind::Str))
          in.fail(std::string(what) + ": expected (key, value) pairs");
        d->set((*pair.list)[0].str->s, (*pair.list)[1]);
      }
    }
  }
  for (const auto& [k, v] : a.kw) d->set(k, v);
  if (ns)
    for (const auto& kv : d->items)
      if (!kv.first.empty() && kv.first[0] == '_') in.fail("namespace attributes cannot start with '_' (" + kv.first + ")");
  return Value::make_dict(std::move(d));
}

Value g_raise(Interp& in, const Args& a) {
  const std::string message = to_text(a.get(0, "message")).s;
  const std::string where = in.at ? ":" + std::to_string(in.at->line) + ":" + std::to_string(in.at->col) : "";
  throw TemplateRaised(in.source + where + ": the template raised: " + message, message);
}

Value g_strftime(Interp& in, const Args& a) {
  const Value fmt = a.get(0, "format");
  if (!fmt.is(Kind::Str)) in.fail("strftime_now: the format must be a string");
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[256];
  const size_t n = std::strftime(buf, sizeof buf, fmt.str->s.c_str(), &tm);
  return Value::string(std::string(buf, n));
}

}  // namespace

bool has_test(const std::string& name) {
  return tests().count(name) > 0;
}

bool apply_test(Interp& in, const std::string& name, const Value& v, const Args& args) {
  const auto it = tests().find(name);
  if (it == tests().end()) in.fail("unknown test '" + name + "'");
  return it->second(in, v, args);
}

const Value* global(const std::string& name) {
  static const std::map<std::string, Value> table = {
      {"range", func("range", g_range)},
      {"namespace", func("namespace", [](Interp& in, const Args& a) { return make_mapping(in, a, true, "namespace"); })},
      {"dict", func("dict", [](Interp& in, const Args& a) { return make_mapping(in, a, false, "dict"); })},
      {"raise_exception", func("raise_exception", g_raise)},
      {"strftime_now", func("strftime_now", g_strftime)},
  };
  const auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

}  // namespace grpo::jinja
