// report.h: report.md of a run, for the homework's grader (algorithm, parameters, training log,
// before/after answers) and for users: curves, a training-log table, the examples that show what
// changed. Everything is read back from the run's own files, so `grpo_train --report-only DIR`
// rebuilds the report of any finished output_dir:
//   config.yaml, metrics.jsonl, eval.jsonl, summary.json, answers_before.jsonl, answers_after.jsonl
// Curves are self-written SVG (no plotting dependency) that GitHub and browsers show.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace grpo {

struct TrainConfig;

// ---------------------------------------------------------------------------------------------
// The pure pieces (tested by hand numbers)

// An accuracy as "63.3%"; a negative value (not measured) as "n/a". The trainer's progress lines
// and the report share it.
std::string fmt_pct(double v);

// Axis ticks at round values (1, 2, 2.5 or 5 x 10^k) covering [lo, hi] with about `target` steps;
// the first tick <= lo and the last >= hi, so the axis spans them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// Exponential moving average with TensorBoard's debiasing: m_t = a*m_{t-1} + (1-a)*y_t, shown as
// m_t / (1 - a^t), so the first points are not pulled toward 0. Non-finite ys are skipped.
std::vector<double> ema(const std::vector<double>& ys, double alpha);

// Indices of the training-log table: about `want` evenly spaced rows of n steps, always the last.
std::vector<size_t> log_table_rows(size_t n, size_t want = 10);

// Before/after examples that show what changed: wrong -> right first, then right -> wrong (at least
// one when there is one), then unchanged (wrong both times, then right both times), up to max_n.
struct ExamplePick {
  std::vector<size_t> order;                                     // indices into the evaluated questions
  size_t fixed = 0, broken = 0, both_wrong = 0, both_right = 0;  // counts over all questions
};
ExamplePick pick_examples(const std::vector<bool>& before_ok, const std::vector<bool>& after_ok, size_t max_n = 5);

// The change in accuracy over the same n questions, with its 95% interval from the paired answers:
// with w questions wrong -> right and r right -> wrong, d = (w - r) / n and se = sqrt(w + r - (w - r)^2 / n) / n
// (the paired, McNemar-style standard error); the interval is d +- 1.96 se. In points (percent).
struct PairedChange {
  size_t n = 0, fixed = 0, broken = 0;
  double points = 0, half_width = 0;
  bool holds_zero() const { return points - half_width <= 0 && points + half_width >= 0; }
};
PairedChange paired_change(const std::vector<bool>& before_ok, const std::vector<bool>& after_ok);

struct Chart {
  std::string title, y_label;
  std::vector<double> xs, ys;            // the raw per-step series (drawn faint)
  double ema_alpha = 0.9;                // the smoothed line drawn over it
  std::vector<double> mark_xs, mark_ys;  // evaluation points, as markers (may be empty)
  std::string mark_label;                // legend text of the markers
};
std::string svg_chart(const Chart& c);

// ---------------------------------------------------------------------------------------------
// The report

// The keys of a config whose value differs from the defaults, as YAML lines; reward_weights as one map of
// the rewards that count (a weight 0 does not shape the run and is left out).
std::string changed_keys_yaml(const TrainConfig& cfg);

// Writes <out_dir>/report.md and <out_dir>/plots/*.svg from the run's files (see the top).
void write_report(const std::string& out_dir);

}  // namespace grpo
