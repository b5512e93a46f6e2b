// Tests for report.h: tick choice, EMA, the training-log rows and the before/after example picker
// on hand-made inputs; the chart's SVG carries the ticks, grid, both series and the markers.
// (The whole report of a real run is checked in test_trainer.cpp's end-to-end test.)
#include <gtest/gtest.h>

#include <cmath>

#include "grpo/config/config.h"
#include "grpo/run/report.h"

using namespace grpo;

namespace {

void expect_ticks(double lo, double hi, int target, const std::vector<double>& want) {
  auto got = nice_ticks(lo, hi, target);
  ASSERT_EQ(got.size(), want.size()) << lo << ".." << hi;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << lo << ".." << hi << " #" << i;
}

}  // namespace

TEST(Report, NiceTicks) {
  expect_ticks(0, 1, 5, {0, 0.2, 0.4, 0.6, 0.8, 1.0});
  expect_ticks(0.1875, 0.7734, 5, {0, 0.2, 0.4, 0.6, 0.8});  // the demo's raw extremes -> round ticks
  expect_ticks(1, 80, 6, {0, 20, 40, 60, 80});
  expect_ticks(-0.013, 0.021, 4, {-0.02, -0.01, 0, 0.01, 0.02, 0.03});
  expect_ticks(12, 13, 4, {12, 12.25, 12.5, 12.75, 13});  // 2.5 x 10^k
  expect_ticks(3, 3, 5, {1, 2, 3, 4, 5});                 // flat series: a band around it
  expect_ticks(0, 0, 5, {-1, -0.5, 0, 0.5, 1});
}

TEST(Report, EmaIsDebiased) {
  auto m = ema({1, 1, 1, NAN, 1}, 0.9);
  EXPECT_DOUBLE_EQ(m[0], 1.0);  // debiased: a constant stays constant from the first point
  EXPECT_NEAR(m[2], 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(m[3]));
  EXPECT_NEAR(m[4], 1.0, 1e-12);
  auto s = ema({0, 10}, 0.5);
  // m1 = 0.5*0 = 0 -> 0/(1-0.5) = 0; m2 = 0.5*0 + 0.5*10 = 5 -> 5/(1-0.25) = 6.667
  EXPECT_DOUBLE_EQ(s[0], 0.0);
  EXPECT_NEAR(s[1], 20.0 / 3.0, 1e-12);
}

TEST(Report, LogTableRows) {
  EXPECT_EQ(log_table_rows(0), std::vector<size_t>{});
  EXPECT_EQ(log_table_rows(4), (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(log_table_rows(80), (std::vector<size_t>{0, 7, 15, 23, 31, 39, 47, 55, 63, 71, 79}));  // steps 1, 8, ..., 80
  EXPECT_EQ(log_table_rows(23), (std::vector<size_t>{0, 2, 5, 8, 11, 14, 17, 20, 22}));            // and the last
  EXPECT_EQ(log_table_rows(1000).size(), 11u);
}

TEST(Report, PickExamplesShowsWhatChanged) {
  //                 index: 0  1  2  3  4  5  6
  std::vector<bool> before = {1, 1, 0, 0, 0, 1, 0}, after = {1, 0, 1, 1, 0, 1, 1};
  auto p = pick_examples(before, after);
  EXPECT_EQ(p.fixed, 3u);
  EXPECT_EQ(p.broken, 1u);
  EXPECT_EQ(p.both_wrong, 1u);
  EXPECT_EQ(p.both_right, 2u);
  EXPECT_EQ(p.order, (std::vector<size_t>{2, 3, 6, 1, 4}));  // fixed, then the regression, then unchanged
  // Many fixed: 3 of them, then the one regression and one unchanged are still shown.
  std::vector<bool> b2(10, false), a2(10, true);
  b2[8] = true;  // the only regression
  a2[8] = false;
  a2[9] = false;  // wrong both times
  EXPECT_EQ(pick_examples(b2, a2).order, (std::vector<size_t>{0, 1, 2, 8, 9}));
  // No regression, no unchanged: the free slots go to more fixed ones.
  EXPECT_EQ(pick_examples({0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 1}).order, (std::vector<size_t>{0, 1, 2, 3, 4}));
  // Nothing changed: unchanged ones, wrong before right.
  EXPECT_EQ(pick_examples({1, 0, 1}, {1, 0, 1}).order, (std::vector<size_t>{1, 0, 2}));
  EXPECT_TRUE(pick_examples({}, {}).order.empty());
}

TEST(Report, PairedChangeIntervalByHand) {
  // 8 questions, 2 right -> wrong: d = -2/8 = -25 points, se = sqrt(2 - 4/8) / 8 = 0.1530931,
  // half width 1.96 * 15.30931 = 30.00625 points: [-55.0, +5.0] holds 0.
  std::vector<bool> b(8, true), a(8, true);
  a[3] = a[5] = false;
  PairedChange c = paired_change(b, a);
  EXPECT_EQ(c.n, 8u);
  EXPECT_EQ(c.fixed, 0u);
  EXPECT_EQ(c.broken, 2u);
  EXPECT_DOUBLE_EQ(c.points, -25.0);
  EXPECT_NEAR(c.half_width, 30.00625, 1e-4);
  EXPECT_TRUE(c.holds_zero());
  // 100 questions, 20 wrong -> right, 5 right -> wrong: d = 15, se = sqrt(25 - 2.25) / 100 = 0.0476970,
  // half width 9.34861: [5.65, 24.35] does not hold 0.
  std::vector<bool> b2(100, false), a2(100, false);
  for (int i = 0; i < 20; ++i) a2[i] = true;
  for (int i = 20; i < 25; ++i) b2[i] = true;
  c = paired_change(b2, a2);
  EXPECT_DOUBLE_EQ(c.points, 15.0);
  EXPECT_NEAR(c.half_width, 9.34861, 1e-4);
  EXPECT_FALSE(c.holds_zero());
  EXPECT_EQ(paired_change({}, {}).n, 0u);
}

TEST(Report, HyperparametersAreTheKeysThatDifferAndTheRewardsThatCount) {
  TrainConfig cfg;
  EXPECT_EQ(changed_keys_yaml(cfg), "# none: every key has its default\n");
  cfg.group_size = 4;
  cfg.system_prompt = "Solve: it";
  cfg.reward_weights["format"] = 0;
  cfg.reward_weights["length"] = 0.5;
  EXPECT_EQ(changed_keys_yaml(cfg), "system_prompt: \"Solve: it\"\ngroup_size: 4\nreward_weights: {correctness: 1, length: 0.5}\n");
}

TEST(Report, SvgChartHasTicksGridSeriesAndMarkers) {
  Chart c;
  c.title = "mean reward <per step>";
  c.y_label = "reward";
  c.xs = {1, 2, 3, 4};
  c.ys = {0.1875, 0.5, 0.25, 0.7734};
  c.mark_xs = {0, 4};
  c.mark_ys = {0.3, 0.6};
  c.mark_label = "greedy eval";
  std::string svg = svg_chart(c);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("mean reward &lt;per step&gt;"), std::string::npos);  // escaped
  for (const char* tick : {">0.0<", ">0.2<", ">0.4<", ">0.6<", ">0.8<"}) EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  EXPECT_EQ(svg.find(">0.7734<"), std::string::npos);  // no raw extremes as labels
  size_t polylines = 0, circles = 0, grid = 0;
  for (size_t at = 0; (at = svg.find("<polyline", at)) != std::string::npos; ++at) ++polylines;
  for (size_t at = 0; (at = svg.find("<circle", at)) != std::string::npos; ++at) ++circles;
  for (size_t at = 0; (at = svg.find("stroke=\"#e6e6e6\"", at)) != std::string::npos; ++at) ++grid;
  EXPECT_EQ(polylines, 2u);     // raw + EMA
  EXPECT_EQ(circles, 2u + 1u);  // two markers + the legend's
  EXPECT_GE(grid, 5u + 5u);
  EXPECT_NE(svg.find(">step<"), std::string::npos);
  EXPECT_NE(svg.find("EMA (alpha 0.90, debiased)"), std::string::npos);
}

TEST(Report, SvgLegendTakesTheEmptiestCorner) {
  // The legend box is the only stroke="#ccc" rect; its x says which side it went to (plot area
  // x from 64 to 544, box 196 wide: left corner x = 68, right corner x = 344).
  auto legend_at = [](std::vector<double> ys) {
    Chart c;
    for (size_t i = 0; i < ys.size(); ++i) c.xs.push_back(double(i));
    c.ys = std::move(ys);
    std::string svg = svg_chart(c);
    size_t at = svg.rfind("<rect x=\"", svg.find("stroke=\"#ccc\""));
    return svg.substr(at + 9, svg.find('"', at + 9) - at - 9) + "," +
           svg.substr(svg.find("y=\"", at) + 3, svg.find('"', svg.find("y=\"", at) + 3) - svg.find("y=\"", at) - 3);
  };
  std::vector<double> rising, falling;
  for (int i = 0; i <= 40; ++i) {
    rising.push_back(i / 40.0);
    falling.push_back(1 - i / 40.0);
  }
  EXPECT_EQ(legend_at(falling), "344.0,38.0");  // top right is free
  EXPECT_EQ(legend_at(rising), "68.0,38.0");    // the curve ends top right: top left
}
