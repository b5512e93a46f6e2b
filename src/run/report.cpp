// report.cpp: report.md and its SVG curves, rebuilt from a run's files; see report.h.
// The EMA follows TensorBoard's smoothing (debiased); ticks follow the usual 1-2-2.5-5 x 10^k rule.
#include "grpo/run/report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "grpo/base/common.h"
#include "grpo/config/config.h"

namespace grpo {

using json = nlohmann::json;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Percentages, ticks, smoothing, row and example choice

std::string fmt_pct(double v) {
  if (v < 0) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100 * v);
  return b;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {  // a flat series: a unit-wide band around it
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.5;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  // The 1e-9 slack keeps a bound that already sits on a tick from adding one more step.
  const int64_t k0 = static_cast<int64_t>(std::floor(lo / step + 1e-9));
  const int64_t k1 = static_cast<int64_t>(std::ceil(hi / step - 1e-9));
  std::vector<double> out;
  for (int64_t k = k0; k <= k1; ++k) out.push_back(static_cast<double>(k) * step);
  return out;
}

std::vector<double> ema(const std::vector<double>& ys, double alpha) {
  std::vector<double> out(ys.size(), std::nan(""));
  double m = 0, weight = 1;  // weight = alpha^t
  for (size_t i = 0; i < ys.size(); ++i) {
    if (!std::isfinite(ys[i])) continue;
    m = alpha * m + (1 - alpha) * ys[i];
    weight *= alpha;
    out[i] = m / (1 - weight);
  }
  return out;
}

std::vector<size_t> log_table_rows(size_t n, size_t want) {
  std::vector<size_t> out;
  if (n == 0) return out;
  const size_t stride = std::max<size_t>(1, (n + want - 1) / std::max<size_t>(1, want));
  out.push_back(0);
  for (size_t k = 1; k * stride - 1 < n; ++k)
    if (k * stride - 1 != out.back()) out.push_back(k * stride - 1);
  if (out.back() != n - 1) out.push_back(n - 1);
  return out;
}

ExamplePick pick_examples(const std::vector<bool>& before_ok, const std::vector<bool>& after_ok, size_t max_n) {
  ExamplePick p;
  std::vector<size_t> fixed, broken, both_wrong, both_right;
  for (size_t i = 0; i < std::min(before_ok.size(), after_ok.size()); ++i)
    (before_ok[i] ? (after_ok[i] ? both_right : broken) : (after_ok[i] ? fixed : both_wrong)).push_back(i);
  p.fixed = fixed.size();
  p.broken = broken.size();
  p.both_wrong = both_wrong.size();
  p.both_right = both_right.size();
  std::vector<size_t> unchanged = both_wrong;
  unchanged.insert(unchanged.end(), both_right.begin(), both_right.end());
  // First pass with quotas (so a regression and an unchanged question are shown when they exist),
  // then the free slots go to the same categories in the same order.
  const std::vector<size_t>* cats[3] = {&fixed, &broken, &unchanged};
  const size_t quota[3] = {max_n >= 3 ? max_n - 2 : max_n, 1, 1};
  size_t taken[3] = {0, 0, 0};
  size_t total = 0;
  for (int pass = 0; pass < 2; ++pass)
    for (int c = 0; c < 3; ++c)
      while (total < max_n && taken[c] < cats[c]->size() && (pass == 1 || taken[c] < quota[c])) {
        ++taken[c];
        ++total;
      }
  for (int c = 0; c < 3; ++c) p.order.insert(p.order.end(), cats[c]->begin(), cats[c]->begin() + taken[c]);
  return p;
}

PairedChange paired_change(const std::vector<bool>& before_ok, const std::vector<bool>& after_ok) {
  const ExamplePick p = pick_examples(before_ok, after_ok, 0);
  PairedChange c;
  c.n = std::min(before_ok.size(), after_ok.size());
  c.fixed = p.fixed;
  c.broken = p.broken;
  if (c.n == 0) return c;
  const double n = double(c.n), w = double(p.fixed), r = double(p.broken);
  c.points = 100 * (w - r) / n;
  c.half_width = 100 * 1.96 * std::sqrt(std::max(0.0, w + r - (w - r) * (w - r) / n)) / n;
  return c;
}

// ---------------------------------------------------------------------------------------------
// SVG

namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&quot;" : std::string(1, c);
  return out;
}

// A tick label with as many decimals as the tick step needs (0.25 -> 2, 20 -> 0).
std::string tick_label(double v, double step) {
  int dec = 0;
  while (dec < 8 && std::abs(step * std::pow(10.0, dec) - std::round(step * std::pow(10.0, dec))) > 1e-6) ++dec;
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", dec, std::abs(v) < step * 1e-9 ? 0.0 : v);
  return b;
}

// The x and y ranges of a chart's finite points, series and markers together ([0, 1] when none).
std::array<double, 4> data_extent(const Chart& c) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto extend = [&](const std::vector<double>& xs, const std::vector<double>& ys) {
    for (size_t i = 0; i < xs.size() && i < ys.size(); ++i) {
      if (!std::isfinite(ys[i])) continue;
      x0 = std::min(x0, xs[i]);
      x1 = std::max(x1, xs[i]);
      y0 = std::min(y0, ys[i]);
      y1 = std::max(y1, ys[i]);
    }
  };
  extend(c.xs, c.ys);
  extend(c.mark_xs, c.mark_ys);
  if (!std::isfinite(x0)) return {0, 1, 0, 1};
  return {x0, x1, y0, y1};
}

}  // namespace

std::string svg_chart(const Chart& c) {
  const double W = 560, H = 280, L = 64, R = 16, T = 34, B = 44;
  const auto [x0, x1, y0, y1] = data_extent(c);
  const auto xt = nice_ticks(x0, x1, 6), yt = nice_ticks(y0, y1, 5);
  const double ax0 = xt.front(), ax1 = xt.back(), ay0 = yt.front(), ay1 = yt.back();
  auto px = [&](double x) { return L + (x - ax0) / (ax1 - ax0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - ay0) / (ay1 - ay0) * (H - T - B); };
  std::ostringstream s;
  char b[320];
  auto out = [&](const char* fmt, auto... args) {
    std::snprintf(b, sizeof b, fmt, args...);
    s << b;
  };
  out("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"11\">\n", W, H);
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  out("<text x=\"%.1f\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n", W / 2, xml_escape(c.title).c_str());
  // Grid and tick labels.
  for (double y : yt) {
    out("<path d=\"M%.1f %.1f H%.1f\" stroke=\"#e6e6e6\"/>\n", L, py(y), W - R);
    out("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L - 5, py(y) + 4, tick_label(y, yt[1] - yt[0]).c_str());
  }
  for (double x : xt) {
    out("<path d=\"M%.1f %.1f V%.1f\" stroke=\"#e6e6e6\"/>\n", px(x), T, H - B);
    out("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px(x), H - B + 15, tick_label(x, xt[1] - xt[0]).c_str());
  }
  out("<path d=\"M%.1f %.1f V%.1f H%.1f\" stroke=\"#444\" fill=\"none\"/>\n", L, T, H - B, W - R);
  // Axis titles.
  out("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n", (L + W - R) / 2, H - 8);
  out("<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", (T + H - B) / 2,
      xml_escape(c.y_label).c_str());
  // Series: raw (faint), its EMA, evaluation markers.
  auto polyline = [&](const std::vector<double>& ys, const char* style) {
    s << "<polyline fill=\"none\" " << style << " points=\"";
    for (size_t i = 0; i < c.xs.size() && i < ys.size(); ++i)
      if (std::isfinite(ys[i])) out("%.1f,%.1f ", px(c.xs[i]), py(ys[i]));
    s << "\"/>\n";
  };
  polyline(c.ys, "stroke=\"#1f77b4\" stroke-opacity=\"0.3\" stroke-width=\"1\"");
  polyline(ema(c.ys, c.ema_alpha), "stroke=\"#1f77b4\" stroke-width=\"2\"");
  for (size_t i = 0; i < c.mark_xs.size() && i < c.mark_ys.size(); ++i)
    if (std::isfinite(c.mark_ys[i]))
      out("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#d62728\"/>\n", px(c.mark_xs[i]), py(c.mark_ys[i]));
  // Legend: in the plot corner that covers the fewest points (top right, top left, bottom right,
  // bottom left, first wins a tie), so it never hides where a curve ends.
  const double lw = 196, lh = c.mark_xs.empty() ? 34 : 48;
  double lx = W - R - lw - 4, ly = T + 4;
  size_t fewest = SIZE_MAX;
  for (const auto& [cx, cy] : {std::pair{W - R - lw - 4, T + 4}, std::pair{L + 4, T + 4}, std::pair{W - R - lw - 4, H - B - lh - 4},
                               std::pair{L + 4, H - B - lh - 4}}) {
    size_t inside = 0;
    auto count = [&](const std::vector<double>& xs, const std::vector<double>& ys) {
      for (size_t i = 0; i < xs.size() && i < ys.size(); ++i)
        if (std::isfinite(ys[i]) && px(xs[i]) >= cx - 4 && px(xs[i]) <= cx + lw + 4 && py(ys[i]) >= cy - 4 && py(ys[i]) <= cy + lh + 4)
          ++inside;
    };
    count(c.xs, c.ys);
    count(c.mark_xs, c.mark_ys);
    if (inside < fewest) {
      fewest = inside;
      lx = cx;
      ly = cy;
    }
  }
  out("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n", lx, ly, lw,
      lh);
  out("<path d=\"M%.1f %.1f h18\" stroke=\"#1f77b4\" stroke-opacity=\"0.3\"/><text x=\"%.1f\" y=\"%.1f\">per step</text>\n", lx + 6,
      ly + 11, lx + 28, ly + 15);
  out("<path d=\"M%.1f %.1f h18\" stroke=\"#1f77b4\" stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\">EMA (alpha %.2f, debiased)</text>\n",
      lx + 6, ly + 25, lx + 28, ly + 29, c.ema_alpha);
  if (!c.mark_xs.empty())
    out("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#d62728\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n", lx + 15, ly + 39, lx + 28,
        ly + 43, xml_escape(c.mark_label).c_str());
  s << "</svg>\n";
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// report.md

namespace {

std::vector<json> read_jsonl_file(const std::string& path) {
  std::vector<json> out;
  if (!file_exists(path)) return out;
  std::istringstream in(read_file(path));
  size_t lineno = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    if (!trim(line).empty()) out.push_back(parse_json(line, path + ":" + std::to_string(lineno)));
  }
  return out;
}

std::string pct(const json& v) {
  return v.is_number() ? fmt_pct(v.get<double>()) : "n/a";
}

std::string num(const json& v, const char* fmt) {
  if (!v.is_number()) return "n/a";
  char b[48];
  std::snprintf(b, sizeof b, fmt, v.get<double>());
  return b;
}

// A step's metric; its rollouts' reward_mean and accuracy are, with dynamic sampling, those of
// every completion drawn (the trained batch keeps the mixed groups, whose accuracy leans to 1/2).
json step_value(const json& step, const std::string& key) {
  const std::string drawn = "dynamic_sampling/" + key + "_all";
  if ((key == "reward_mean" || key == "accuracy") && step.contains(drawn)) return step[drawn];
  return step.value(key, json());
}

std::string md_quote(const std::string& s) {
  std::string out = "> ";
  for (char c : s) out += c == '\n' ? std::string("\n> ") : std::string(1, c);
  return out;
}

double sum_of(const std::vector<json>& rows, const char* key) {
  double s = 0;
  for (const auto& r : rows)
    if (r.contains(key) && r[key].is_number()) s += r[key].get<double>();
  return s;
}

}  // namespace

namespace {

// What the report reads: the files a grpo_train output directory holds.
struct RunFiles {
  TrainConfig cfg;
  std::string out_dir, cfg_path;
  std::vector<json> history, evals, ans_before, ans_after;  // metrics.jsonl, eval.jsonl, answers_*.jsonl
  std::vector<bool> ok_before, ok_after;                    // each answer's "correct" (greedy, strict)
  json summary, before, after;                              // summary.json and its two evaluations
  double wall = 0;
  int64_t steps = 0;
};

RunFiles read_run_files(const std::string& out_dir) {
  if (!dir_exists(out_dir)) throw Error(out_dir + ": no such output directory");
  RunFiles f;
  f.out_dir = out_dir;
  f.cfg_path = out_dir + "/config.yaml";
  if (!file_exists(f.cfg_path)) throw Error(out_dir + ": no config.yaml (not a grpo_train output directory?)");
  apply_config_sources(f.cfg, {f.cfg_path}, {});
  f.history = read_jsonl_file(out_dir + "/metrics.jsonl");
  f.evals = read_jsonl_file(out_dir + "/eval.jsonl");
  f.ans_before = read_jsonl_file(out_dir + "/answers_before.jsonl");
  f.ans_after = read_jsonl_file(out_dir + "/answers_after.jsonl");
  const std::string summary_path = out_dir + "/summary.json";
  f.summary = file_exists(summary_path) ? parse_json(read_file(summary_path), summary_path) : json::object();
  f.before = f.summary.value("before", json::object());
  f.after = f.summary.value("after", json::object());
  f.wall = f.summary.value("wall_s", 0.0);
  f.steps = f.history.empty() ? 0 : f.history.back().value("step", int64_t(0));
  for (const auto& a : f.ans_before) f.ok_before.push_back(a.value("correct", false));
  for (const auto& a : f.ans_after) f.ok_after.push_back(a.value("correct", false));
  return f;
}

// The greedy (strict) accuracy's change over the same questions and its interval (paired_change); an
// interval that holds 0 is said to be one the evaluation cannot tell from noise.
std::string change_interval(const RunFiles& f) {
  if (f.ans_before.empty() || f.ans_before.size() != f.ans_after.size()) return "";
  const PairedChange c = paired_change(f.ok_before, f.ok_after);
  char b[512];
  if (c.fixed + c.broken == 0) {
    std::snprintf(b, sizeof b, "No greedy answer of the %zu questions changed from right to wrong or back: no change to measure.\n\n", c.n);
    return b;
  }
  std::snprintf(b, sizeof b,
                "The change in greedy (strict) accuracy, %+.1f points on %zu questions (%zu wrong -> right, %zu right -> wrong), "
                "has a 95%% interval of [%+.1f, %+.1f] points",
                c.points, c.n, c.fixed, c.broken, c.points - c.half_width, c.points + c.half_width);
  std::string out = b;
  if (c.holds_zero())
    out +=
        ": it holds 0, so this evaluation is **too small to tell the change from noise** (raise eval_limit, or eval_samples for the "
        "sampled figure)";
  return out + ".\n\n";
}

// ---- what changed: before/after accuracy, the reward's trend, where the wall time went
void write_what_changed(std::ostream& md, const RunFiles& f) {
  const TrainConfig& cfg = f.cfg;
  const auto &history = f.history, &evals = f.evals;
  const json &summary = f.summary, &before = f.before, &after = f.after;
  const double wall = f.wall;
  md << "## What changed\n\n";
  if (summary.contains("after")) {
    const auto n = after.value("n", int64_t(0));
    md << "On " << n << " held-out questions, greedy accuracy (strict answer format) went from " << pct(before["greedy_strict"]) << " to **"
       << pct(after["greedy_strict"]) << "**, greedy with flexible answer extraction from " << pct(before["greedy_flexible"]) << " to **"
       << pct(after["greedy_flexible"]) << "**";
    if (after.contains("sampled") && after["sampled"].is_number())
      md << ", and sampled accuracy (temperature " << cfg.eval_temperature << ", " << cfg.eval_samples << " draws per question) from "
         << pct(before["sampled"]) << " to **" << pct(after["sampled"]) << "**";
    md << ".";
    if (!history.empty()) {
      const size_t k = std::min<size_t>(10, history.size());
      double r0 = 0, r1 = 0;
      auto reward = [&](size_t i) {
        const json r = step_value(history[i], "reward_mean");
        return r.is_number() ? r.get<double>() : 0.0;
      };
      for (size_t i = 0; i < k; ++i) {
        r0 += reward(i);
        r1 += reward(history.size() - 1 - i);
      }
      char b[160];
      std::snprintf(b, sizeof b, " The mean training reward averaged %.3f over the first %zu steps and %.3f over the last %zu.", r0 / k, k,
                    r1 / k, k);
      md << b;
    }
    const double t_roll = sum_of(history, "time_rollout_s"), t_upd = sum_of(history, "time_update_s");
    const double t_eval = before.value("seconds", 0.0) + after.value("seconds", 0.0) + sum_of(evals, "seconds");
    char b[320];
    std::snprintf(b, sizeof b,
                  "\n\nWall time %.1f s: rollouts %.1f s (%.0f%%), policy updates %.1f s (%.0f%%), evaluation %.1f s (%.0f%%), "
                  "the rest (loading, checkpoints, logs) %.1f s.\n\n",
                  wall, t_roll, 100 * t_roll / std::max(wall, 1e-9), t_upd, 100 * t_upd / std::max(wall, 1e-9), t_eval,
                  100 * t_eval / std::max(wall, 1e-9), std::max(0.0, wall - t_roll - t_upd - t_eval));
    md << b;
    md << "| | greedy (strict) | greedy (flexible) | sampled |\n|---|---|---|---|\n";
    md << "| before | " << pct(before["greedy_strict"]) << " | " << pct(before["greedy_flexible"]) << " | " << pct(before["sampled"])
       << " |\n";
    md << "| after | " << pct(after["greedy_strict"]) << " | " << pct(after["greedy_flexible"]) << " | " << pct(after["sampled"])
       << " |\n\n";
    md << change_interval(f);
    if (before.contains("tool_calls_mean") && after.contains("tool_calls_mean"))
      md << "Tools (" << get_config_value(cfg, "tools") << "), greedy answers: " << num(before["tool_calls_mean"], "%.2f") << " -> **"
         << num(after["tool_calls_mean"], "%.2f")
         << "** calls per answer; answers with a call whose result was the gold: " << pct(before["tool_useful_frac"]) << " -> **"
         << pct(after["tool_useful_frac"]) << "**.\n\n";
  } else {
    md << "The run has not finished (no summary.json): no after-training evaluation yet.\n\n";
  }
}

// "correctness x1, format x0.1, 2 rule rewards, a reward program": what the run's reward sums.
std::string rewards_in_use(const TrainConfig& cfg) {
  std::string out;
  for (const auto& [fn, w] : cfg.reward_weights)
    if (w != 0) out += (out.empty() ? "" : ", ") + fn + " x" + get_config_value(cfg, "reward_weights." + fn);
  if (!cfg.reward_rules.empty())
    out += (out.empty() ? "" : ", ") + std::to_string(cfg.reward_rules.size()) + " rule reward" + (cfg.reward_rules.size() > 1 ? "s" : "");
  if (!cfg.reward_command.empty()) out += (out.empty() ? "" : ", ") + std::string("the reward program ") + cfg.reward_command[0];
  return out.empty() ? "none" : out;
}

// ---- the algorithm and its hyperparameters
void write_algorithm(std::ostream& md, const RunFiles& f) {
  const TrainConfig& cfg = f.cfg;
  const std::string& cfg_path = f.cfg_path;
  md << "## Algorithm\n\nGroup Relative Policy Optimization (DeepSeekMath). For each of B = " << cfg.prompts_per_step
     << " prompts per step, G = " << cfg.group_size << " completions are sampled; the rewards (" << rewards_in_use(cfg)
     << ") are turned into advantages relative to the group, A = (r - mean) / (std + eps) (scale `" << choice_name(cfg.scale_rewards)
     << "`); the policy is updated with the PPO-clip objective (ratio clipped to [" << 1 - cfg.clip_eps_low << ", " << 1 + cfg.clip_eps_high
     << "])" << (cfg.beta > 0 ? " plus a k3 KL penalty to the frozen initial model (beta " + num(cfg.beta, "%g") + ")" : "")
     << ", token losses aggregated as `" << choice_name(cfg.loss_aggregation) << "`, " << cfg.num_iterations
     << " update(s) per rollout batch, with AdamW. No value model is needed.\n\n";
  md << "## Hyperparameters\n\nThe keys that differ from grpo_train's defaults (every key is in `" << cfg_path << "`):\n\n```yaml\n"
     << changed_keys_yaml(cfg) << "```\n\n";
}

// ---- about ten evenly spaced steps of metrics.jsonl
void write_training_log(std::ostream& md, const RunFiles& f) {
  const auto& history = f.history;
  md << "## Training log\n\n";
  if (history.empty()) {
    md << "No steps were logged.\n\n";
  } else {
    md << "About ten evenly spaced steps of `metrics.jsonl` (every step is there, and in TensorBoard: `tensorboard --logdir " << f.out_dir
       << "/tb`):\n\n";
    md << "| step | reward | accuracy | KL | completion length | clip ratio | grad norm | step time (s) "
          "|\n|---|---|---|---|---|---|---|---|\n";
    for (size_t i : log_table_rows(history.size())) {
      const json& h = history[i];
      md << "| " << h.value("step", int64_t(0)) << " | " << num(step_value(h, "reward_mean"), "%.3f") << " | "
         << num(step_value(h, "accuracy"), "%.3f") << " | " << num(h.value("kl", json()), "%.4f") << " | "
         << num(h.value("completion_len_mean", json()), "%.1f") << " | " << num(h.value("clip_ratio_region", json()), "%.3f") << " | "
         << num(h.value("grad_norm", json()), "%.3f") << " | " << num(h.value("time_step_s", json()), "%.2f") << " |\n";
    }
    md << "\n";
  }
}

// ---- the curves, as SVG files under plots/
void write_curves(std::ostream& md, const RunFiles& f, const std::string& out_dir) {
  const auto &history = f.history, &evals = f.evals;
  const json &summary = f.summary, &before = f.before, &after = f.after;
  const int64_t steps = f.steps;
  md << "## Curves\n\n";
  fs::create_directories(out_dir + "/plots");
  struct Curve {
    const char *key, *title, *y_label, *eval_key;
  };
  const Curve curves[] = {{"reward_mean", "mean reward per step", "reward", nullptr},
                          {"accuracy", "accuracy of the rollouts (and of evaluations)", "accuracy", "greedy_strict"},
                          {"kl", "KL to the reference model", "KL (k3)", nullptr},
                          {"completion_len_mean", "mean completion length", "tokens", nullptr},
                          {"loss", "loss", "loss", nullptr}};
  for (const auto& cv : curves) {
    Chart c;
    c.title = cv.title;
    c.y_label = cv.y_label;
    for (const auto& h : history) {
      const json y = step_value(h, cv.key);
      if (y.is_null() && !h.contains(cv.key)) continue;
      c.xs.push_back(h["step"].get<double>());
      c.ys.push_back(y.is_number() ? y.get<double>() : std::nan(""));
    }
    if (cv.eval_key) {
      auto mark = [&](double step, const json& e) {
        if (e.contains(cv.eval_key) && e[cv.eval_key].is_number()) {
          c.mark_xs.push_back(step);
          c.mark_ys.push_back(e[cv.eval_key]);
        }
      };
      if (summary.contains("before")) mark(0, before);
      for (const auto& e : evals) mark(e.value("step", 0.0), e);
      if (summary.contains("after")) mark(double(steps), after);
      c.mark_label = "greedy eval (strict)";
    }
    write_file_atomic(out_dir + "/plots/" + cv.key + ".svg", svg_chart(c));
    md << "![" << cv.title << "](plots/" << cv.key << ".svg)\n\n";
  }
}

// ---- before / after: the same questions
void write_examples(std::ostream& md, const RunFiles& f) {
  const auto &ans_before = f.ans_before, &ans_after = f.ans_after;
  md << "## Before / after: the same questions\n\n";
  if (ans_before.empty() || ans_after.empty()) {
    md << "No per-question answers were recorded (answers_before.jsonl / answers_after.jsonl).\n\n";
  } else {
    const std::vector<bool>&ok_b = f.ok_before, &ok_a = f.ok_after;
    const ExamplePick p = pick_examples(ok_b, ok_a);
    md << "Greedy answers of the " << std::min(ok_b.size(), ok_a.size()) << " evaluated questions: " << p.fixed << " went wrong -> right, "
       << p.broken << " right -> wrong, " << p.both_wrong << " stayed wrong, " << p.both_right
       << " stayed right. Shown: the first of each kind, in that order.\n\n";
    for (size_t i : p.order) {
      const json &b = ans_before[i], &a = ans_after[i];
      const bool bo = ok_b[i], ao = ok_a[i];
      md << "### Question " << i + 1 << ": " << (bo ? "right" : "wrong") << " -> " << (ao ? "right" : "wrong") << " (gold "
         << b.value("gold", std::string("?")) << ")\n\n"
         << md_quote(b.value("question", std::string())) << "\n\n";
      // With tools, the whole exchange: the model's calls, the tool's answers, its final turn.
      auto shown = [](const json& x) { return x.value("transcript", x.value("completion", std::string())); };
      md << "**Before** (" << (bo ? "correct" : "wrong") << "):\n\n```\n" << shown(b) << "\n```\n\n";
      md << "**After** (" << (ao ? "correct" : "wrong") << "):\n\n```\n" << shown(a) << "\n```\n\n";
    }
  }
}

}  // namespace

std::string changed_keys_yaml(const TrainConfig& cfg) {
  const TrainConfig defaults;
  std::string out;
  for (const std::string& key : config_key_names()) {  // the scalars, then the lists
    if (starts_with(key, "reward_weights")) continue;
    if (get_config_value(cfg, key) != get_config_value(defaults, key)) out += key + ": " + config_yaml_value(cfg, key) + "\n";
  }
  if (cfg.reward_weights != defaults.reward_weights) {
    out += "reward_weights: {";
    const char* sep = "";
    for (const auto& [fn, w] : cfg.reward_weights) {
      if (w == 0) continue;
      out += sep + fn + ": " + get_config_value(cfg, "reward_weights." + fn);
      sep = ", ";
    }
    out += "}\n";
  }
  return out.empty() ? "# none: every key has its default\n" : out;
}

void write_report(const std::string& out_dir) {
  const RunFiles f = read_run_files(out_dir);
  std::ostringstream md;
  md << "# GRPO training report\n\n";
  md << "`" << f.cfg.model_path << "` trained with GRPO on `" << f.cfg.train_data << "` for " << f.steps << " steps ("
     << f.cfg.prompts_per_step << " prompts x " << f.cfg.group_size << " samples each), evaluated on `" << f.cfg.eval_data << "`.\n\n";
  write_what_changed(md, f);
  write_algorithm(md, f);
  write_training_log(md, f);
  write_curves(md, f, out_dir);
  write_examples(md, f);
  write_file_atomic(out_dir + "/report.md", md.str());
}

}  // namespace grpo
