// builtins.cpp: jinja2's filters and tests with their arguments and defaults (jinja2 3.1), the
// tojson filter as transformers defines it (json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False)), and the globals of transformers' environment: range,
// namespace, dict, raise_exception, strftime_now.
#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>

#include "jinja_impl.h"

namespace grpo::jinja {

namespace {

using FilterFn = Value (*)(Interp&, const Value&, const Args&);
using TestFn = bool (*)(Interp&, const Value&, const Args&);

Value str_value(const Value& v) {
  return v.is(Kind::Str) ? v : Value::string(to_text(v));
}
bool is_num(const Value& v) {
  return v.is(Kind::Int) || v.is(Kind::Float) || v.is(Kind::Bool);
}
double as_num(const Value& v) {
  return v.is(Kind::Float) ? v.f : v.is(Kind::Int) ? static_cast<double>(v.i) : v.b;
}

// jinja2's attribute getter for filters: "a.b" reads item a then b (items before attributes).
Value attr_path(Interp& in, const Value& v, const Value& attribute) {
  if (attribute.is(Kind::Int))
    return v.is(Kind::List) && attribute.i >= 0 && static_cast<size_t>(attribute.i) < v.list->size()
               ? (*v.list)[static_cast<size_t>(attribute.i)]
               : Value();
  if (!attribute.is(Kind::Str)) in.fail("attribute must be a string, found '" + type_name(attribute) + "'");
  Value cur = v;
  for (const std::string& part : split(attribute.str->s, '.')) {
    if (cur.is(Kind::Dict)) {
      const Value* x = cur.dict->find(part);
      cur = x ? *x : Value::undefined("'" + type_name(cur) + " object' has no attribute '" + part + "'");
    } else if (cur.is(Kind::Undefined)) {
      in.fail(cur.hint ? *cur.hint : "undefined");
    } else {
      cur = method_of(in, cur, part);
    }
  }
  return cur;
}

// Case-folded copy for the filters that compare strings case-insensitively by default.
Value fold(const Value& v, bool case_sensitive) {
  if (case_sensitive || !v.is(Kind::Str)) return v;
  return Value::string(case_map(*v.str, 'l'));
}

// ---------------------------------------------------------------------------------------------
// Filters

Value f_trim(Interp& in, const Value& v, const Args& a) {
  const Value chars = a.get(0, "chars");
  if (!chars.is(Kind::None) && !chars.is(Kind::Undefined) && !chars.is(Kind::Str)) in.fail("trim: chars must be a string");
  return Value::string(py_strip(to_text(v), chars.is(Kind::Str) ? &chars.str->s : nullptr, true, true));
}
Value f_length(Interp& in, const Value& v, const Args&) {
  return Value::integer(length(in, v));
}
Value f_items(Interp& in, const Value& v, const Args&) {
  if (v.is(Kind::Undefined)) return Value::make_list({});
  if (!v.is(Kind::Dict)) in.fail("items: can only get item pairs from a mapping, found '" + type_name(v) + "'");
  std::vector<Value> out;
  for (const auto& [k, x] : v.dict->items) out.push_back(Value::make_list({Value::string(k), x}, true));
  return Value::make_list(std::move(out));
}
Value f_join(Interp& in, const Value& v, const Args& a) {
  const Value sep = a.get(0, "d", Value::string("")), attribute = a.get(1, "attribute", Value::none());
  const Text sep_text = to_text(sep);
  Text out;
  const std::vector<Value> items = items_of(in, v);
  for (size_t k = 0; k < items.size(); ++k) {
    if (k) out.append(sep_text);
    out.append(to_text(attribute.is(Kind::None) ? items[k] : attr_path(in, items[k], attribute)));
  }
  return Value::string(std::move(out));
}
Value f_list(Interp& in, const Value& v, const Args&) {
  return Value::make_list(items_of(in, v));
}
Value f_first(Interp& in, const Value& v, const Args&) {
  const std::vector<Value> items = items_of(in, v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}
Value f_last(Interp& in, const Value& v, const Args&) {
  const std::vector<Value> items = items_of(in, v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}
Value f_lower(Interp&, const Value& v, const Args&) {
  return Value::string(case_map(to_text(v), 'l'));
}
Value f_upper(Interp&, const Value& v, const Args&) {
  return Value::string(case_map(to_text(v), 'u'));
}
Value f_capitalize(Interp&, const Value& v, const Args&) {
  return Value::string(case_map(to_text(v), 'c'));
}
// jinja2's title: words split at runs of "-", whitespace, "(", "{", "[", "<"; each capitalised.
Value f_title(Interp&, const Value& v, const Args&) {
  const Text t = to_text(v);
  Text out;
  auto delim = [](char c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || c == ' ' || (c >= '\t' && c <= '\r'); };
  size_t i = 0;
  while (i < t.s.size()) {
    size_t j = i;
    const bool d = delim(t.s[i]);
    while (j < t.s.size() && delim(t.s[j]) == d) ++j;
    out.append(d ? t.slice(i, j) : case_map(t.slice(i, j), 'c'));
    i = j;
  }
  return Value::string(std::move(out));
}
Value f_replace(Interp& in, const Value& v, const Args& a) {
  const Value count = a.get(2, "count", Value::none());
  if (!count.is(Kind::None) && !count.is(Kind::Int)) in.fail("replace: count must be an integer");
  return Value::string(py_replace(to_text(v), to_text(a.get(0, "old")), to_text(a.get(1, "new")), count.is(Kind::Int) ? count.i : -1));
}
Value f_string(Interp&, const Value& v, const Args&) {
  return str_value(v);
}
Value f_int(Interp& in, const Value& v, const Args& a) {
  const Value dflt = a.get(0, "default", Value::integer(0));
  if (v.is(Kind::Int) || v.is(Kind::Bool)) return Value::integer(v.is(Kind::Int) ? v.i : v.b);
  if (v.is(Kind::Float)) return std::isfinite(v.f) ? Value::integer(static_cast<int64_t>(std::trunc(v.f))) : dflt;
  if (!v.is(Kind::Str)) return dflt;
  const std::string s(trim(v.str->s));
  try {
    size_t used = 0;
    const long long x = std::stoll(s, &used, static_cast<int>(a.get(1, "base", Value::integer(10)).i));
    if (used == s.size()) return Value::integer(x);
    const double d = std::stod(s, &used);
    if (used == s.size() && std::isfinite(d)) return Value::integer(static_cast<int64_t>(std::trunc(d)));
  } catch (const std::exception&) {
  }
  (void)in;
  return dflt;
}
Value f_float(Interp&, const Value& v, const Args& a) {
  const Value dflt = a.get(0, "default", Value::number(0.0));
  if (is_num(v)) return Value::number(as_num(v));
  if (!v.is(Kind::Str)) return dflt;
  const std::string s(trim(v.str->s));
  try {
    size_t used = 0;
    const double d = std::stod(s, &used);
    if (used == s.size()) return Value::number(d);
  } catch (const std::exception&) {
  }
  return dflt;
}
Value f_default(Interp&, const Value& v, const Args& a) {
  const bool boolean = truthy(a.get(1, "boolean", Value::boolean(false)));
  if (v.is(Kind::Undefined) || (boolean && !truthy(v))) return a.get(0, "default_value", Value::string(""));
  return v;
}
Value f_tojson(Interp& in, const Value& v, const Args& a) {
  const Value indent = a.get(1, "indent", Value::none()), seps = a.get(2, "separators", Value::none());
  const bool ensure_ascii = truthy(a.get(0, "ensure_ascii", Value::boolean(false))),
             sort_keys = truthy(a.get(3, "sort_keys", Value::boolean(false)));
  if (!indent.is(Kind::None) && !indent.is(Kind::Int))
    in.fail("tojson: indent must be an integer or None, found '" + type_name(indent) + "'");
  const int width = indent.is(Kind::Int) ? static_cast<int>(std::max<int64_t>(0, indent.i)) : -1;
  std::string item_sep = width >= 0 ? "," : ", ", key_sep = ": ";
  if (!seps.is(Kind::None)) {
    if (!seps.is(Kind::List) || seps.list->size() != 2 || !(*seps.list)[0].is(Kind::Str) || !(*seps.list)[1].is(Kind::Str))
      in.fail("tojson: separators must be a pair of strings");
    item_sep = (*seps.list)[0].str->s;
    key_sep = (*seps.list)[1].str->s;
  }
  return Value::string(to_json(in, v, ensure_ascii, width, item_sep, key_sep, sort_keys), label_of(v));
}

// select/reject/selectattr/rejectattr: keep the items whose test (default: truthiness) is `want`.
Value filter_items(Interp& in, const Value& v, const Args& a, bool by_attr, bool want) {
  std::vector<Value> out;
  const size_t first_test = by_attr ? 1 : 0;
  const Value test = a.pos.size() > first_test ? a.pos[first_test] : Value::none();
  Args test_args;
  for (size_t k = first_test + 1; k < a.pos.size(); ++k) test_args.pos.push_back(a.pos[k]);
  for (const Value& item : items_of(in, v)) {
    const Value subject = by_attr ? attr_path(in, item, a.get(0, "attribute")) : item;
    bool ok = truthy(subject);
    if (test.is(Kind::Str)) ok = apply_test(in, test.str->s, subject, test_args);
    if (ok == want) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}
Value f_select(Interp& in, const Value& v, const Args& a) {
  return filter_items(in, v, a, false, true);
}
Value f_reject(Interp& in, const Value& v, const Args& a) {
  return filter_items(in, v, a, false, false);
}
Value f_selectattr(Interp& in, const Value& v, const Args& a) {
  return filter_items(in, v, a, true, true);
}
Value f_rejectattr(Interp& in, const Value& v, const Args& a) {
  return filter_items(in, v, a, true, false);
}
Value f_map(Interp& in, const Value& v, const Args& a) {
  std::vector<Value> out;
  const Value attribute = a.get(static_cast<size_t>(-1), "attribute");
  for (const Value& item : items_of(in, v)) {
    if (!attribute.is(Kind::Undefined)) {
      Value x = attr_path(in, item, attribute);
      if (x.is(Kind::Undefined)) x = a.get(static_cast<size_t>(-1), "default");
      out.push_back(x);
      continue;
    }
    if (a.pos.empty() || !a.pos[0].is(Kind::Str)) in.fail("map: expected a filter name or attribute=");
    Args rest;
    rest.pos.assign(a.pos.begin() + 1, a.pos.end());
    rest.kw = a.kw;
    out.push_back(apply_filter(in, a.pos[0].str->s, item, rest));
  }
  return Value::make_list(std::move(out));
}
Value f_unique(Interp& in, const Value& v, const Args& a) {
  const bool cs = truthy(a.get(0, "case_sensitive", Value::boolean(false)));
  const Value attribute = a.get(1, "attribute", Value::none());
  std::vector<Value> out, seen;
  for (const Value& item : items_of(in, v)) {
    const Value key = fold(attribute.is(Kind::None) ? item : attr_path(in, item, attribute), cs);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equal(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::make_list(std::move(out));
}
Value sorted(Interp& in, std::vector<Value> items, bool reverse, bool cs, const Value& attribute) {
  auto key = [&](const Value& x) { return fold(attribute.is(Kind::None) ? x : attr_path(in, x, attribute), cs); };
  std::stable_sort(items.begin(), items.end(),
                   [&](const Value& x, const Value& y) { return reverse ? less(in, key(y), key(x)) : less(in, key(x), key(y)); });
  return Value::make_list(std::move(items));
}
Value f_sort(Interp& in, const Value& v, const Args& a) {
  return sorted(in, items_of(in, v), truthy(a.get(0, "reverse", Value::boolean(false))),
                truthy(a.get(1, "case_sensitive", Value::boolean(false))), a.get(2, "attribute", Value::none()));
}
Value f_dictsort(Interp& in, const Value& v, const Args& a) {
  const Value pairs = f_items(in, v, {});
  const bool by_value = a.get(1, "by", Value::string("key")).is(Kind::Str) && a.get(1, "by", Value::string("key")).str->s == "value";
  return sorted(in, *pairs.list, truthy(a.get(2, "reverse", Value::boolean(false))),
                truthy(a.get(0, "case_sensitive", Value::boolean(false))), Value::integer(by_value ? 1 : 0));
}
Value f_reverse(Interp& in, const Value& v, const Args&) {
  std::vector<Value> items = items_of(in, v);
  std::reverse(items.begin(), items.end());
  if (!v.is(Kind::Str)) return Value::make_list(std::move(items));
  Text t;
  for (const Value& c : items) t.append(*c.str);
  return Value::string(std::move(t));
}
Value min_max(Interp& in, const Value& v, const Args& a, bool want_max) {
  const Value s =
      sorted(in, items_of(in, v), false, truthy(a.get(0, "case_sensitive", Value::boolean(false))), a.get(1, "attribute", Value::none()));
  if (s.list->empty()) return Value::undefined("No aggregated item, sequence was empty.");
  return want_max ? s.list->back() : s.list->front();
}
Value f_max(Interp& in, const Value& v, const Args& a) {
  return min_max(in, v, a, true);
}
Value f_min(Interp& in, const Value& v, const Args& a) {
  return min_max(in, v, a, false);
}
Value f_indent(Interp& in, const Value& v, const Args& a) {
  const Value width = a.get(0, "width", Value::integer(4));
  const std::string pad = width.is(Kind::Str) ? width.str->s : std::string(static_cast<size_t>(std::max<int64_t>(0, width.i)), ' ');
  const bool first = truthy(a.get(1, "first", Value::boolean(false))), blank = truthy(a.get(2, "blank", Value::boolean(false)));
  Text src = to_text(v);
  src.append("\n");
  const std::vector<Value> parts = *in.call(method_of(in, Value::string(src), "splitlines"), {}).list;
  Text out;
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k) out.append("\n");
    const bool empty = parts[k].str->s.empty();
    if (k > 0 && (blank || !empty)) out.append(pad);
    out.append(*parts[k].str);
  }
  if (first) {
    Text lead = Text::labelled(pad, 0);
    lead.append(out);
    return Value::string(std::move(lead));
  }
  return Value::string(std::move(out));
}
Value f_safe(Interp&, const Value& v, const Args&) {
  return v;
}
Value f_abs(Interp& in, const Value& v, const Args&) {
  if (v.is(Kind::Int) || v.is(Kind::Bool)) return Value::integer(std::llabs(v.is(Kind::Int) ? v.i : v.b));
  if (v.is(Kind::Float)) return Value::number(std::fabs(v.f));
  in.fail("bad operand type for abs(): '" + type_name(v) + "'");
}
Value f_round(Interp& in, const Value& v, const Args& a) {
  if (!is_num(v)) in.fail("round: expected a number, found '" + type_name(v) + "'");
  const int64_t precision = a.get(0, "precision", Value::integer(0)).i;
  const Value method = a.get(1, "method", Value::string("common"));
  const std::string m = method.is(Kind::Str) ? method.str->s : "";
  const double p = std::pow(10.0, static_cast<double>(precision));
  if (m == "ceil") return Value::number(std::ceil(as_num(v) * p) / p);
  if (m == "floor") return Value::number(std::floor(as_num(v) * p) / p);
  if (m != "common") in.fail("round: method must be common, ceil or floor");
  if (!v.is(Kind::Float)) return Value::integer(v.is(Kind::Int) ? v.i : v.b);
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::clamp<int64_t>(precision, 0, 300)), v.f);
  return Value::number(precision >= 0 ? std::strtod(buf, nullptr) : std::nearbyint(v.f / p) * p);
}
Value f_sum(Interp& in, const Value& v, const Args& a) {
  const Value attribute = a.get(0, "attribute", Value::none());
  Value total = a.get(1, "start", Value::integer(0));
  for (const Value& item : items_of(in, v)) {
    const Value x = attribute.is(Kind::None) ? item : attr_path(in, item, attribute);
    if (!is_num(x) || !is_num(total)) in.fail("sum: unsupported operand types '" + type_name(total) + "' and '" + type_name(x) + "'");
    total = total.is(Kind::Float) || x.is(Kind::Float)
                ? Value::number(as_num(total) + as_num(x))
                : Value::integer(static_cast<int64_t>(as_num(total)) + static_cast<int64_t>(as_num(x)));
  }
  return total;
}
Value f_wordcount(Interp&, const Value& v, const Args&) {
  const std::string s = to_text(v).s;
  int64_t n = 0;
  bool in_word = false;
  for (size_t pos = 0; pos < s.size();) {
    const uint32_t cp = decode_utf8(s, pos);
    const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
    const bool word =
        cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) || (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
    if (word && !in_word) ++n;
    in_word = word;
  }
  return Value::integer(n);
}
Value f_attr(Interp& in, const Value& v, const Args& a) {
  const Value name = a.get(0, "name");
  if (!name.is(Kind::Str)) in.fail("attr: the name must be a string");
  if (v.is(Kind::Dict) && !v.dict->is_namespace) {
    const Value m = method_of(in, v, name.str->s);
    return m.is(Kind::Undefined) ? Value::undefined("'dict object' has no attribute '" + name.str->s + "'") : m;
  }
  return attr_path(in, v, name);
}

const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> table = {{"trim", f_trim},
                                                        {"length", f_length},
                                                        {"count", f_length},
                                                        {"items", f_items},
                                                        {"join", f_join},
                                                        {"list", f_list},
                                                        {"first", f_first},
                                                        {"last", f_last},
                                                        {"lower", f_lower},
                                                        {"upper", f_upper},
                                                        {"capitalize", f_capitalize},
                                                        {"title", f_title},
                                                        {"replace", f_replace},
                                                        {"string", f_string},
                                                        {"int", f_int},
                                                        {"float", f_float},
                                                        {"default", f_default},
                                                        {"d", f_default},
                                                        {"tojson", f_tojson},
                                                        {"selectattr", f_selectattr},
                                                        {"rejectattr", f_rejectattr},
                                                        {"select", f_select},
                                                        {"reject", f_reject},
                                                        {"map", f_map},
                                                        {"unique", f_unique},
                                                        {"dictsort", f_dictsort},
                                                        {"indent", f_indent},
                                                        {"safe", f_safe},
                                                        {"abs", f_abs},
                                                        {"round", f_round},
                                                        {"sum", f_sum},
                                                        {"wordcount", f_wordcount},
                                                        {"reverse", f_reverse},
                                                        {"sort", f_sort},
                                                        {"max", f_max},
                                                        {"min", f_min},
                                                        {"attr", f_attr}};
  return table;
}

}  // namespace

bool has_filter(const std::string& name) {
  return filters().count(name) > 0;
}

Value apply_filter(Interp& in, const std::string& name, const Value& v, const Args& args) {
  const auto it = filters().find(name);
  if (it == filters().end()) in.fail("unknown filter '" + name + "'");
  return it->second(in, v, args);
}

}  // namespace grpo::jinja
