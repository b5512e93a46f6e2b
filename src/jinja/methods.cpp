// methods.cpp: the Python methods templates call on values (str.split, str.strip, dict.items,
// dict.get, list.index, ...), with Python's results, and the string helpers the filters share.
// The sandbox: methods that would change a value (list.append, dict.update, ...) are refused.
#include <utf8proc.h>

#include <algorithm>
#include <cctype>

#include "jinja_impl.h"

namespace grpo::jinja {

// ---------------------------------------------------------------------------------------------
// String helpers (Python's str semantics over code points; provenance kept through slices)

namespace {

bool in_chars(uint32_t cp, const std::string* chars) {
  if (!chars) return py_space(cp);
  for (size_t pos = 0; pos < chars->size();)
    if (decode_utf8(*chars, pos) == cp) return true;
  return false;
}

}  // namespace

Text py_strip(const Text& t, const std::string* chars, bool left, bool right) {
  const std::vector<size_t> at = codepoint_offsets(t.s);
  size_t b = 0, e = at.size() - 1;
  auto cp_at = [&](size_t k) {
    size_t pos = at[k];
    return decode_utf8(t.s, pos);
  };
  while (left && b < e && in_chars(cp_at(b), chars)) ++b;
  while (right && e > b && in_chars(cp_at(e - 1), chars)) --e;
  return t.slice(at[b], at[e]);
}

std::vector<Value> py_split(Interp& in, const Text& t, const std::string* sep, int64_t maxsplit, bool from_right) {
  std::vector<Value> parts;
  if (sep && sep->empty()) in.fail("empty separator");
  if (sep) {
    std::vector<size_t> cuts;  // start offsets of separators used
    if (!from_right) {
      for (size_t p = t.s.find(*sep); p != std::string::npos && (maxsplit < 0 || static_cast<int64_t>(cuts.size()) < maxsplit);
           p = t.s.find(*sep, p + sep->size()))
        cuts.push_back(p);
    } else {
      size_t end = t.s.size();
      while (end >= sep->size() && (maxsplit < 0 || static_cast<int64_t>(cuts.size()) < maxsplit)) {
        const size_t p = t.s.rfind(*sep, end - sep->size());
        if (p == std::string::npos) break;
        cuts.insert(cuts.begin(), p);
        end = p;
      }
    }
    size_t from = 0;
    for (size_t c : cuts) {
      parts.push_back(Value::string(t.slice(from, c)));
      from = c + sep->size();
    }
    parts.push_back(Value::string(t.slice(from, t.s.size())));
    return parts;
  }
  // Runs of whitespace; maxsplit counts from the left (rsplit: from the right).
  std::vector<std::pair<size_t, size_t>> words;
  for (size_t pos = 0; pos < t.s.size();) {
    size_t start = pos;
    if (py_space(decode_utf8(t.s, pos))) continue;
    size_t end = pos;
    while (end < t.s.size()) {
      size_t q = end;
      if (py_space(decode_utf8(t.s, q))) break;
      end = q;
    }
    words.emplace_back(start, end);
    pos = end;
  }
  if (maxsplit >= 0 && static_cast<int64_t>(words.size()) > maxsplit + 1) {
    const Text rest = from_right
                          ? py_strip(t.slice(0, words[words.size() - static_cast<size_t>(maxsplit) - 1].second), nullptr, true, false)
                          : py_strip(t.slice(words[static_cast<size_t>(maxsplit)].first, t.s.size()), nullptr, false, true);
    if (from_right) {
      parts.push_back(Value::string(rest));
      for (size_t k = words.size() - static_cast<size_t>(maxsplit); k < words.size(); ++k)
        parts.push_back(Value::string(t.slice(words[k].first, words[k].second)));
    } else {
      for (size_t k = 0; k < static_cast<size_t>(maxsplit); ++k) parts.push_back(Value::string(t.slice(words[k].first, words[k].second)));
      parts.push_back(Value::string(rest));
    }
    return parts;
  }
  for (const auto& [b, e] : words) parts.push_back(Value::string(t.slice(b, e)));
  return parts;
}

Text py_replace(const Text& t, const Text& old, const Text& repl, int64_t count) {
  Text out;
  int64_t done = 0;
  if (old.s.empty()) {
    const std::vector<size_t> at = codepoint_offsets(t.s);
    for (size_t k = 0; k + 1 < at.size(); ++k) {
      if (count < 0 || done < count) {
        out.append(repl);
        ++done;
      }
      out.append(t.slice(at[k], at[k + 1]));
    }
    if (count < 0 || done < count) out.append(repl);
    return out;
  }
  size_t from = 0;
  for (size_t p = t.s.find(old.s); p != std::string::npos && (count < 0 || done < count); p = t.s.find(old.s, from)) {
    out.append(t.slice(from, p));
    out.append(repl);
    from = p + old.s.size();
    ++done;
  }
  out.append(t.slice(from, t.s.size()));
  return out;
}

namespace {

bool cased(uint32_t cp) {
  const auto c = static_cast<utf8proc_int32_t>(cp);
  return utf8proc_toupper(c) != c || utf8proc_tolower(c) != c || utf8proc_category(c) == UTF8PROC_CATEGORY_LT;
}

}  // namespace

// mode: 'u' upper, 'l' lower, 'c' capitalize, 't' Python's str.title, 's' swap nothing (copy).
Text case_map(const Text& t, char mode) {
  std::string out;
  bool prev_cased = false, first = true;
  for (size_t pos = 0; pos < t.s.size();) {
    const auto cp = static_cast<utf8proc_int32_t>(decode_utf8(t.s, pos));
    bool up = mode == 'u';
    if (mode == 'c') up = first;
    if (mode == 't') up = !prev_cased;
    append_utf8(out, static_cast<uint32_t>(up ? utf8proc_toupper(cp) : (mode == 's' ? cp : utf8proc_tolower(cp))));
    prev_cased = cased(static_cast<uint32_t>(cp));
    first = false;
  }
  const int label = t.spans.empty() ? 0 : t.spans.front().label;
  return Text::labelled(std::move(out), label);
}

namespace {

bool all_of_cps(const std::string& s, bool (*pred)(uint32_t)) {
  if (s.empty()) return false;
  for (size_t pos = 0; pos < s.size();)
    if (!pred(decode_utf8(s, pos))) return false;
  return true;
}
bool is_digit_cp(uint32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_ND;
}
bool is_alpha_cp(uint32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}
bool is_alnum_cp(uint32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return is_alpha_cp(cp) || (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

const std::string* opt_str(Interp& in, const Value& v, const char* what) {
  if (v.is(Kind::None) || v.is(Kind::Undefined)) return nullptr;
  if (!v.is(Kind::Str)) in.fail(std::string(what) + " must be a string or None, found '" + type_name(v) + "'");
  return &v.str->s;
}
int64_t opt_int(Interp& in, const Value& v, int64_t dflt) {
  if (v.is(Kind::None) || v.is(Kind::Undefined)) return dflt;
  if (!v.is(Kind::Int)) in.fail("expected an integer, found '" + type_name(v) + "'");
  return v.i;
}
const Text& need_str(Interp& in, const Value& v, const char* what) {
  if (!v.is(Kind::Str)) in.fail(std::string(what) + " must be a string, found '" + type_name(v) + "'");
  return *v.str;
}

// str.format: {} {0} {name} and {{ }}; no format specs.
Value str_format(Interp& in, const Text& fmt, const Args& args) {
  Text out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.s.size(); ++i) {
    const char c = fmt.s[i];
    if ((c == '{' || c == '}') && i + 1 < fmt.s.size() && fmt.s[i + 1] == c) {
      out.append(std::string(1, c));
      ++i;
      continue;
    }
    if (c == '}') in.fail("str.format: single '}' encountered in format string");
    if (c != '{') {
      out.append(fmt.slice(i, i + 1));
      continue;
    }
    const size_t close = fmt.s.find('}', i);
    if (close == std::string::npos) in.fail("str.format: single '{' encountered in format string");
    const std::string field = fmt.s.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!") != std::string::npos) in.fail("str.format: format specs and conversions are not supported here");
    Value v;
    if (field.empty()) {
      v = args.get(auto_index++, "");
    } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
      v = args.get(static_cast<size_t>(std::stoul(field)), "");
    } else {
      v = args.get(static_cast<size_t>(-1), field.c_str());
    }
    if (v.is(Kind::Undefined) && !v.hint) in.fail("str.format: no argument for {" + field + "}");
    out.append(to_text(v));
    i = close;
  }
  return Value::string(std::move(out));
}

bool prefix_match(Interp& in, const Text& s, const Value& arg, bool suffix) {
  std::vector<Value> options = arg.is(Kind::List) ? *arg.list : std::vector<Value>{arg};
  for (const Value& o : options) {
    const std::string& p = need_str(in, o, suffix ? "endswith's argument" : "startswith's argument").s;
    if (suffix ? ends_with(s.s, p) : starts_with(s.s, p)) return true;
  }
  return false;
}

Value str_method(Interp& in, const Text& s, const std::string& name, const Args& a) {
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return Value::string(py_strip(s, opt_str(in, a.get(0, "chars"), "chars"), name != "rstrip", name != "lstrip"));
  if (name == "split" || name == "rsplit")
    return Value::make_list(py_split(in, s, opt_str(in, a.get(0, "sep"), "sep"), opt_int(in, a.get(1, "maxsplit"), -1), name == "rsplit"));
  if (name == "startswith" || name == "endswith") return Value::boolean(prefix_match(in, s, a.get(0, "prefix"), name == "endswith"));
  if (name == "replace")
    return Value::string(
        py_replace(s, need_str(in, a.get(0, "old"), "old"), need_str(in, a.get(1, "new"), "new"), opt_int(in, a.get(2, "count"), -1)));
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize")
    return Value::string(case_map(s, name == "upper" ? 'u' : name == "lower" ? 'l' : name == "title" ? 't' : 'c'));
  if (name == "format") return str_format(in, s, a);
  if (name == "join") {
    Text out;
    const std::vector<Value> items = items_of(in, a.get(0, "iterable"));
    for (size_t k = 0; k < items.size(); ++k) {
      if (k) out.append(s);
      out.append(need_str(in, items[k], "join's items"));
    }
    return Value::string(std::move(out));
  }
  if (name == "find" || name == "rfind" || name == "count" || name == "index") {
    const std::string& sub = need_str(in, a.get(0, "sub"), "the substring").s;
    if (name == "count") {
      int64_t n = 0;
      for (size_t p = s.s.find(sub); p != std::string::npos; p = s.s.find(sub, p + std::max<size_t>(sub.size(), 1))) ++n;
      return Value::integer(sub.empty() ? static_cast<int64_t>(codepoint_offsets(s.s).size()) : n);
    }
    const size_t p = name == "rfind" ? s.s.rfind(sub) : s.s.find(sub);
    if (p == std::string::npos && name == "index") in.fail("substring not found");
    if (p == std::string::npos) return Value::integer(-1);
    const std::vector<size_t> at = codepoint_offsets(s.s);
    return Value::integer(static_cast<int64_t>(std::lower_bound(at.begin(), at.end(), p) - at.begin()));
  }
  if (name == "splitlines") {
    std::vector<Value> lines;
    size_t from = 0;
    for (size_t i = 0; i < s.s.size(); ++i)
      if (s.s[i] == '\n' || s.s[i] == '\r') {
        lines.push_back(Value::string(s.slice(from, i)));
        if (s.s[i] == '\r' && i + 1 < s.s.size() && s.s[i + 1] == '\n') ++i;
        from = i + 1;
      }
    if (from < s.s.size()) lines.push_back(Value::string(s.slice(from, s.s.size())));
    return Value::make_list(std::move(lines));
  }
  if (name == "isdigit") return Value::boolean(all_of_cps(s.s, is_digit_cp));
  if (name == "isalpha") return Value::boolean(all_of_cps(s.s, is_alpha_cp));
  if (name == "isalnum") return Value::boolean(all_of_cps(s.s, is_alnum_cp));
  if (name == "isspace") return Value::boolean(all_of_cps(s.s, py_space));
  if (name == "islower" || name == "isupper") {
    const Text mapped = case_map(s, name == "islower" ? 'l' : 'u');
    bool any_cased = false;
    for (size_t pos = 0; pos < s.s.size();) any_cased = any_cased || cased(decode_utf8(s.s, pos));
    return Value::boolean(any_cased && mapped.s == s.s);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const std::string& p = need_str(in, a.get(0, "affix"), "the affix").s;
    if (name == "removeprefix") return Value::string(starts_with(s.s, p) ? s.slice(p.size(), s.s.size()) : s);
    return Value::string(ends_with(s.s, p) ? s.slice(0, s.s.size() - p.size()) : s);
  }
  in.fail("'str' object has no method '" + name + "'");
}

const char* const kStrMethods[] = {"strip",   "lstrip",  "rstrip",  "split",   "rsplit",       "startswith",  "endswith",
                                   "replace", "upper",   "lower",   "title",   "capitalize",   "format",      "join",
                                   "find",    "rfind",   "count",   "index",   "splitlines",   "isdigit",     "isalpha",
                                   "isalnum", "isspace", "islower", "isupper", "removeprefix", "removesuffix"};
const char* const kUnsafe[] = {"append", "extend",  "insert", "pop",        "remove", "clear",
                               "sort",   "reverse", "update", "setdefault", "popitem"};

Value dict_method(Interp& in, const Value& self, const std::string& name, const Args& a) {
  const Dict& d = *self.dict;
  if (name == "items") {
    std::vector<Value> out;
    for (const auto& [k, v] : d.items) out.push_back(Value::make_list({Value::string(k), v}, true));
    return Value::make_list(std::move(out));
  }
  if (name == "keys" || name == "values") {
    std::vector<Value> out;
    for (const auto& [k, v] : d.items) out.push_back(name == "keys" ? Value::string(k) : v);
    return Value::make_list(std::move(out));
  }
  if (name == "get") {
    const Value key = a.get(0, "key");
    const Value* v = key.is(Kind::Str) ? d.find(key.str->s) : nullptr;
    return v ? *v : a.get(1, "default", Value::none());
  }
  in.fail("'dict' object has no method '" + name + "'");
}

Value list_method(Interp& in, const Value& self, const std::string& name, const Args& a) {
  const Value x = a.get(0, "value");
  int64_t n = 0;
  for (size_t k = 0; k < self.list->size(); ++k) {
    if (!equal((*self.list)[k], x)) continue;
    if (name == "index") return Value::integer(static_cast<int64_t>(k));
    ++n;
  }
  if (name == "index") in.fail(repr(x) + " is not in list");
  return Value::integer(n);
}

Value bound(const Value& self, const std::string& name, Value (*impl)(Interp&, const Value&, const std::string&, const Args&)) {
  auto fn = std::make_shared<Func>();
  fn->name = type_name(self) + "." + name;
  fn->call = [self, name, impl](Interp& in, const Args& a) { return impl(in, self, name, a); };
  Value v;
  v.kind = Kind::Func;
  v.fn = std::move(fn);
  return v;
}

Value unsafe(Interp& in, const Value& self, const std::string& name, const Args&) {
  in.fail("access to attribute '" + name + "' of '" + type_name(self) + "' object is unsafe (the template sandbox keeps values immutable)");
}

}  // namespace

Value method_of(Interp&, const Value& obj, const std::string& name) {
  if (obj.is(Kind::Str)) {
    for (const char* m : kStrMethods)
      if (name == m)
        return bound(obj, name,
                     [](Interp& in, const Value& self, const std::string& n, const Args& a) { return str_method(in, *self.str, n, a); });
    return {};
  }
  if (!obj.is(Kind::Dict) && !obj.is(Kind::List)) return {};
  for (const char* m : kUnsafe)
    if (name == m) return bound(obj, name, unsafe);
  if (obj.is(Kind::Dict) && (name == "items" || name == "keys" || name == "values" || name == "get")) return bound(obj, name, dict_method);
  if (obj.is(Kind::List) && (name == "index" || name == "count")) return bound(obj, name, list_method);
  return {};
}

}  // namespace grpo::jinja
