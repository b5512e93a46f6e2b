// value.cpp: Jinja values with Python's semantics: str() and repr() (floats as repr(float) writes
// them, strings quoted as Python quotes them), equality and order, truth, len() and iteration over
// code points, and json.dumps as transformers' tojson calls it. Text keeps its provenance spans.
#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "jinja_impl.h"

namespace grpo::jinja {

// ---------------------------------------------------------------------------------------------
// Text

void Text::append(std::string_view t, int label) {
  if (t.empty()) return;
  const size_t b = s.size();
  s.append(t);
  if (label == 0) return;
  if (!spans.empty() && spans.back().end == b && spans.back().label == label) {
    spans.back().end = s.size();
  } else {
    spans.push_back({b, s.size(), label});
  }
}

void Text::append(const Text& t) {
  const size_t b = s.size();
  s += t.s;
  for (const Span& sp : t.spans) {
    if (!spans.empty() && spans.back().end == sp.begin + b && spans.back().label == sp.label) {
      spans.back().end = sp.end + b;
    } else {
      spans.push_back({sp.begin + b, sp.end + b, sp.label});
    }
  }
}

Text Text::slice(size_t b, size_t e) const {
  Text out;
  e = std::min(e, s.size());
  if (b >= e) return out;
  out.s = s.substr(b, e - b);
  for (const Span& sp : spans) {
    const size_t lo = std::max(sp.begin, b), hi = std::min(sp.end, e);
    if (lo < hi) out.spans.push_back({lo - b, hi - b, sp.label});
  }
  return out;
}

int Text::label_at(size_t pos) const {
  for (const Span& sp : spans)
    if (pos >= sp.begin && pos < sp.end) return sp.label;
  return 0;
}

Text Text::labelled(std::string str, int label) {
  Text t;
  t.append(str, label);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Values

Value Value::none() {
  Value v;
  v.kind = Kind::None;
  return v;
}
Value Value::boolean(bool x) {
  Value v;
  v.kind = Kind::Bool;
  v.b = x;
  return v;
}
Value Value::integer(int64_t x) {
  Value v;
  v.kind = Kind::Int;
  v.i = x;
  return v;
}
Value Value::number(double x) {
  Value v;
  v.kind = Kind::Float;
  v.f = x;
  return v;
}
Value Value::string(std::string s, int label) {
  return string(Text::labelled(std::move(s), label));
}
Value Value::string(Text t) {
  Value v;
  v.kind = Kind::Str;
  v.str = std::make_shared<const Text>(std::move(t));
  return v;
}
Value Value::make_list(std::vector<Value> items, bool tuple) {
  Value v;
  v.kind = Kind::List;
  v.tuple = tuple;
  v.list = std::make_shared<const std::vector<Value>>(std::move(items));
  return v;
}
Value Value::make_dict(std::shared_ptr<jinja::Dict> d) {
  Value v;
  v.kind = Kind::Dict;
  v.dict = std::move(d);
  return v;
}
Value Value::undefined(std::string what) {
  Value v;
  v.hint = std::make_shared<const std::string>(std::move(what));
  return v;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}
namespace {

// Name -> value lists (a dict's items, a frame's variables): replace the value, or append the pair.
void assign(std::vector<std::pair<std::string, Value>>& list, const std::string& key, Value v) {
  for (auto& [k, old] : list)
    if (k == key) {
      old = std::move(v);
      return;
    }
  list.emplace_back(key, std::move(v));
}

}  // namespace

void Dict::set(const std::string& key, Value v) {
  assign(items, key, std::move(v));
}

const Value* Scope::find(std::string_view n) const {
  for (const Scope* s = this; s; s = s->parent.get())
    for (auto it = s->vars.rbegin(); it != s->vars.rend(); ++it)
      if (it->first == n) return &it->second;
  return nullptr;
}
void Scope::set(const std::string& n, Value v) {
  assign(vars, n, std::move(v));
}

Value from_json(const nlohmann::ordered_json& j, int label) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_float:
      return Value::number(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::string(j.get<std::string>(), label);
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      for (const auto& x : j) items.push_back(from_json(x, label));
      return Value::make_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (auto it = j.begin(); it != j.end(); ++it) d->items.emplace_back(it.key(), from_json(it.value(), label));
      return Value::make_dict(std::move(d));
    }
    default:
      return Value();
  }
}

// ---------------------------------------------------------------------------------------------
// UTF-8

uint32_t decode_utf8(const std::string& s, size_t& pos) {
  const auto c = static_cast<unsigned char>(s[pos]);
  if (c < 0x80) {
    ++pos;
    return c;
  }
  const size_t n = (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 0;
  if (n == 0 || pos + n >= s.size()) {
    ++pos;
    return 0xFFFD;
  }
  uint32_t cp = c & (0x3F >> n);
  for (size_t k = 1; k <= n; ++k) {
    const auto cc = static_cast<unsigned char>(s[pos + k]);
    if ((cc & 0xC0) != 0x80) {
      ++pos;
      return 0xFFFD;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  pos += n + 1;
  return cp;
}

std::vector<size_t> codepoint_offsets(const std::string& s) {
  std::vector<size_t> out;
  out.reserve(s.size() + 1);
  for (size_t pos = 0; pos < s.size();) {
    out.push_back(pos);
    decode_utf8(s, pos);
  }
  out.push_back(s.size());
  return out;
}

bool py_space(uint32_t cp) {
  if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F)) return true;
  if (cp < 0x80) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

namespace {

bool printable(uint32_t cp) {
  if (cp < 0x80) return cp >= 0x20 && cp < 0x7F;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

// The bytes [start, pos) of one decoded code point; an invalid sequence (decoded as U+FFFD) becomes
// a real U+FFFD, as Python's decoding with errors="replace" gives it.
void append_cp_bytes(std::string& out, const std::string& s, size_t start, size_t pos, uint32_t cp) {
  if (cp == 0xFFFD && s.compare(start, pos - start, "\xEF\xBF\xBD") != 0) {
    out += "\xEF\xBF\xBD";
  } else {
    out.append(s, start, pos - start);
  }
}

std::string hex(uint32_t v, int width) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*x", width, v);
  return buf;
}

std::string str_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  const char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const uint32_t cp = decode_utf8(s, pos);
    if (cp == static_cast<uint32_t>(q) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (printable(cp)) {
      append_cp_bytes(out, s, start, pos, cp);
    } else {
      out += cp < 0x100 ? "\\x" + hex(cp, 2) : cp < 0x10000 ? "\\u" + hex(cp, 4) : "\\U" + hex(cp, 8);
    }
  }
  return out + q;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Printing

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  for (int p = 0; p < 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*e", p, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string e(buf);
  const bool neg = e[0] == '-';
  if (neg) e.erase(0, 1);
  const size_t epos = e.find('e');
  std::string digits = e.substr(0, epos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int decpt = std::stoi(e.substr(epos + 1)) + 1;
  std::string out;
  if (d == 0) {
    out = "0.0";
  } else if (decpt <= -4 || decpt > 16) {
    out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    const int x = decpt - 1;
    out += std::string("e") + (x < 0 ? "-" : "+") + (std::abs(x) < 10 ? "0" : "") + std::to_string(std::abs(x));
  } else if (decpt <= 0) {
    out = "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
  } else if (static_cast<size_t>(decpt) >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
  } else {
    out = digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
  }
  return (neg ? "-" : "") + out;
}

std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "NoneType";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::Str:
      return "str";
    case Kind::List:
      return v.tuple ? "tuple" : "list";
    case Kind::Dict:
      return v.dict->is_namespace ? "Namespace" : "dict";
    case Kind::Func:
      return "function";
  }
  return "?";
}

namespace {

std::string dict_repr(const Dict& d) {
  std::string out = "{";
  for (size_t k = 0; k < d.items.size(); ++k) {
    if (k) out += ", ";
    out += str_repr(d.items[k].first) + ": " + repr(d.items[k].second);
  }
  return out + "}";
}

}  // namespace

std::string repr(const Value& v) {
  switch (v.kind) {
    case Kind::Str:
      return str_repr(v.str->s);
    case Kind::List: {
      std::string out = v.tuple ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); ++k) out += (k ? ", " : "") + repr((*v.list)[k]);
      if (v.tuple && v.list->size() == 1) out += ",";
      return out + (v.tuple ? ")" : "]");
    }
    case Kind::Dict:
      return v.dict->is_namespace ? "<Namespace " + dict_repr(*v.dict) + ">" : dict_repr(*v.dict);
    default:
      return to_text(v).s;
  }
}

Text to_text(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return {};
    case Kind::None:
      return Text::labelled("None", 0);
    case Kind::Bool:
      return Text::labelled(v.b ? "True" : "False", 0);
    case Kind::Int:
      return Text::labelled(std::to_string(v.i), 0);
    case Kind::Float:
      return Text::labelled(float_repr(v.f), 0);
    case Kind::Str:
      return *v.str;
    case Kind::Func:
      return Text::labelled("<function " + v.fn->name + ">", 0);
    default:
      return Text::labelled(repr(v), label_of(v));
  }
}

int label_of(const Value& v) {
  if (v.is(Kind::Str)) return v.str->spans.empty() ? 0 : v.str->spans.front().label;
  if (v.is(Kind::List))
    for (const Value& x : *v.list)
      if (int l = label_of(x)) return l;
  if (v.is(Kind::Dict))
    for (const auto& kv : v.dict->items)
      if (int l = label_of(kv.second)) return l;
  return 0;
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::Bool:
      return v.b;
    case Kind::Int:
      return v.i != 0;
    case Kind::Float:
      return v.f != 0;
    case Kind::Str:
      return !v.str->s.empty();
    case Kind::List:
      return !v.list->empty();
    case Kind::Dict:
      return v.dict->is_namespace || !v.dict->items.empty();
    case Kind::Func:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Equality and order

namespace {

bool numeric(const Value& v) {
  return v.is(Kind::Bool) || v.is(Kind::Int) || v.is(Kind::Float);
}
double as_double(const Value& v) {
  return v.is(Kind::Float) ? v.f : v.is(Kind::Int) ? static_cast<double>(v.i) : (v.b ? 1.0 : 0.0);
}
int64_t as_int(const Value& v) {
  return v.is(Kind::Int) ? v.i : (v.b ? 1 : 0);
}

}  // namespace

bool equal(const Value& a, const Value& b) {
  if (numeric(a) && numeric(b)) {
    if (a.is(Kind::Float) || b.is(Kind::Float)) return as_double(a) == as_double(b);
    return as_int(a) == as_int(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined:
    case Kind::None:
      return true;
    case Kind::Str:
      return a.str->s == b.str->s;
    case Kind::List:
      if (a.tuple != b.tuple || a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!equal((*a.list)[k], (*b.list)[k])) return false;
      return true;
    case Kind::Dict:
      if (a.dict->is_namespace || b.dict->is_namespace) return a.dict == b.dict;
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, v] : a.dict->items) {
        const Value* w = b.dict->find(k);
        if (!w || !equal(v, *w)) return false;
      }
      return true;
    default:
      return a.fn == b.fn;
  }
}

bool less(Interp& in, const Value& a, const Value& b) {
  if (numeric(a) && numeric(b)) {
    if (a.is(Kind::Float) || b.is(Kind::Float)) return as_double(a) < as_double(b);
    return as_int(a) < as_int(b);
  }
  if (a.is(Kind::Str) && b.is(Kind::Str)) return a.str->s < b.str->s;
  if (a.is(Kind::List) && b.is(Kind::List) && a.tuple == b.tuple) {
    const size_t n = std::min(a.list->size(), b.list->size());
    for (size_t k = 0; k < n; ++k) {
      if (equal((*a.list)[k], (*b.list)[k])) continue;
      return less(in, (*a.list)[k], (*b.list)[k]);
    }
    return a.list->size() < b.list->size();
  }
  in.fail("'<' is not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

int64_t length(Interp& in, const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return 0;
    case Kind::Str:
      return is_ascii(v.str->s) ? static_cast<int64_t>(v.str->s.size()) : static_cast<int64_t>(codepoint_offsets(v.str->s).size() - 1);
    case Kind::List:
      return static_cast<int64_t>(v.list->size());
    case Kind::Dict:
      return static_cast<int64_t>(v.dict->items.size());
    default:
      in.fail("object of type '" + type_name(v) + "' has no len()");
  }
}

std::vector<Value> items_of(Interp& in, const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return {};
    case Kind::List:
      return *v.list;
    case Kind::Dict: {
      std::vector<Value> keys;
      for (const auto& kv : v.dict->items) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Kind::Str: {
      std::vector<Value> chars;
      const std::vector<size_t> at = codepoint_offsets(v.str->s);
      for (size_t k = 0; k + 1 < at.size(); ++k) chars.push_back(Value::string(v.str->slice(at[k], at[k + 1])));
      return chars;
    }
    default:
      in.fail("'" + type_name(v) + "' object is not iterable");
  }
}

// ---------------------------------------------------------------------------------------------
// JSON (Python's json.dumps)

namespace {

void json_string(const std::string& s, bool ensure_ascii, std::string& out) {
  out += '"';
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const uint32_t cp = decode_utf8(s, pos);
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (cp < 0x20 || (ensure_ascii && cp == 0x7F)) {
          out += "\\u" + hex(cp, 4);
        } else if (ensure_ascii && cp >= 0x80) {
          if (cp >= 0x10000) {
            const uint32_t v = cp - 0x10000;
            out += "\\u" + hex(0xD800 | (v >> 10), 4) + "\\u" + hex(0xDC00 | (v & 0x3FF), 4);
          } else {
            out += "\\u" + hex(cp, 4);
          }
        } else {
          append_cp_bytes(out, s, start, pos, cp);
        }
    }
  }
  out += '"';
}

struct JsonWriter {
  Interp& in;
  bool ensure_ascii, sort_keys;
  int indent;
  std::string item_sep, key_sep;
  std::string out;

  void newline(int level) {
    out += '\n';
    out.append(static_cast<size_t>(indent * level), ' ');
  }
  void write(const Value& v, int level) {
    in.step();
    switch (v.kind) {
      case Kind::None:
        out += "null";
        return;
      case Kind::Bool:
        out += v.b ? "true" : "false";
        return;
      case Kind::Int:
        out += std::to_string(v.i);
        return;
      case Kind::Float:
        out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f < 0 ? "-Infinity" : "Infinity") : float_repr(v.f);
        return;
      case Kind::Str:
        json_string(v.str->s, ensure_ascii, out);
        return;
      case Kind::List:
        return write_list(*v.list, level);
      case Kind::Dict:
        if (!v.dict->is_namespace) return write_dict(*v.dict, level);
        [[fallthrough]];
      default:
        in.fail("Object of type " + type_name(v) + " is not JSON serializable");
    }
  }
  void write_list(const std::vector<Value>& items, int level) {
    if (items.empty()) {
      out += "[]";
      return;
    }
    if (level > kMaxParseDepth) in.fail("tojson: a value nests deeper than " + std::to_string(kMaxParseDepth) + " levels");
    out += '[';
    for (size_t k = 0; k < items.size(); ++k) {
      if (k) out += item_sep;
      if (indent >= 0) newline(level + 1);
      write(items[k], level + 1);
    }
    if (indent >= 0) newline(level);
    out += ']';
  }
  void write_dict(const Dict& d, int level) {
    if (d.items.empty()) {
      out += "{}";
      return;
    }
    if (level > kMaxParseDepth) in.fail("tojson: a value nests deeper than " + std::to_string(kMaxParseDepth) + " levels");
    std::vector<const std::pair<std::string, Value>*> order;
    for (const auto& kv : d.items) order.push_back(&kv);
    if (sort_keys) std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
    out += '{';
    for (size_t k = 0; k < order.size(); ++k) {
      if (k) out += item_sep;
      if (indent >= 0) newline(level + 1);
      json_string(order[k]->first, ensure_ascii, out);
      out += key_sep;
      write(order[k]->second, level + 1);
    }
    if (indent >= 0) newline(level);
    out += '}';
  }
};

}  // namespace

std::string to_json(Interp& in, const Value& v, bool ensure_ascii, int indent, const std::string& item_sep, const std::string& key_sep,
                    bool sort_keys) {
  JsonWriter w{in, ensure_ascii, sort_keys, indent, item_sep, key_sep, {}};
  w.write(v, 0);
  return w.out;
}

std::string python_json_dumps(const nlohmann::ordered_json& j, bool ensure_ascii, int indent) {
  Interp in;
  in.source = "json";
  return to_json(in, from_json(j), ensure_ascii, indent, indent >= 0 ? "," : ", ", ": ", false);
}

}  // namespace grpo::jinja
