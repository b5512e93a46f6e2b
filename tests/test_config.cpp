// Tests for config.h: defaults, YAML, JSON, --set overrides, each error kind, round trip.
#include <gtest/gtest.h>

#include "grpo/base/common.h"
#include "grpo/config/config.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::error_of;
using grpo::test::write_temp;

namespace {}  // namespace

TEST(Config, DefaultsMatchTheIssue) {
  TrainConfig c;
  EXPECT_EQ(c.group_size, 8);
  EXPECT_EQ(c.learning_rate, 1e-6);
  EXPECT_EQ(c.num_iterations, 1);
  EXPECT_EQ(c.clip_eps_low, 0.2);
  EXPECT_EQ(c.clip_eps_high, 0.2);
  EXPECT_EQ(c.beta, 0.0);
  EXPECT_EQ(c.reward_weights.at("correctness"), 1.0);
  EXPECT_EQ(c.loss_aggregation, LossAggregation::Dapo);  // TRL's default loss_type
  EXPECT_TRUE(c.vllm_importance_sampling_correction);
  EXPECT_EQ(c.vllm_importance_sampling_mode, IsCorrectionMode::SequenceMask);
  EXPECT_EQ(c.vllm_importance_sampling_clip_max, 3.0);
}

TEST(Config, YamlFileAndNestedRewardWeights) {
  std::string path = write_temp("c.yaml",
                                "# comment\n"
                                "group_size: 4\n"
                                "learning_rate: 3e-6\n"
                                "loss_aggregation: dr_grpo\n"
                                "mask_truncated_completions: yes\n"
                                "system_prompt: \"Be brief.\\nThink.\"\n"
                                "reward_weights:\n"
                                "  format: 0.5\n"
                                "reward_weights.tags: 0.25\n");
  TrainConfig c;
  load_config_file(c, path);
  EXPECT_EQ(c.group_size, 4);
  EXPECT_DOUBLE_EQ(c.learning_rate, 3e-6);
  EXPECT_EQ(c.loss_aggregation, LossAggregation::DrGrpo);
  EXPECT_TRUE(c.mask_truncated_completions);
  EXPECT_EQ(c.system_prompt, "Be brief.\nThink.");
  EXPECT_EQ(c.reward_weights.at("format"), 0.5);
  EXPECT_EQ(c.reward_weights.at("tags"), 0.25);
  EXPECT_EQ(c.reward_weights.at("correctness"), 1.0);  // untouched default
  EXPECT_EQ(c.origin.at("group_size"), path + ":2");
}

TEST(Config, JsonFile) {
  std::string path = write_temp("c.json",
                                R"({"group_size": 16, "top_p": 0.9, "beta": 0.04, "gradient_checkpointing": true,
                                    "reward_weights": {"correctness": 2}})");
  TrainConfig c;
  load_config_file(c, path);
  EXPECT_EQ(c.group_size, 16);
  EXPECT_DOUBLE_EQ(c.top_p, 0.9);
  EXPECT_DOUBLE_EQ(c.beta, 0.04);
  EXPECT_TRUE(c.gradient_checkpointing);
  EXPECT_EQ(c.reward_weights.at("correctness"), 2.0);
}

TEST(Config, OverridesWinOverFile) {
  std::string path = write_temp("c.yaml", "group_size: 4\ntemperature: 0.7\n");
  TrainConfig c;
  load_config_file(c, path);
  apply_override(c, "group_size=12");
  apply_override(c, "reward_weights.format=0");
  EXPECT_EQ(c.group_size, 12);
  EXPECT_DOUBLE_EQ(c.temperature, 0.7);
  EXPECT_EQ(c.reward_weights.at("format"), 0.0);
  EXPECT_EQ(c.origin.at("group_size"), "--set");
}

TEST(Config, UnknownKeySuggestsClosest) {
  TrainConfig c;
  std::string msg = error_of([&] { apply_override(c, "group_sizee=4"); });
  EXPECT_NE(msg.find("'group_sizee'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'group_size'"), std::string::npos) << msg;
  msg = error_of([&] { apply_override(c, "reward_weights.formatt=1"); });
  EXPECT_NE(msg.find("did you mean 'reward_weights.format'"), std::string::npos) << msg;
  std::string path = write_temp("c.yaml", "group_size: 4\nlearnig_rate: 1e-5\n");
  msg = error_of([&] { load_config_file(c, path); });
  EXPECT_NE(msg.find(path + ":2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'learning_rate'"), std::string::npos) << msg;
  msg = error_of([&] { apply_override(c, "zzzzzzzz=1"); });
  EXPECT_EQ(msg.find("did you mean"), std::string::npos) << msg;  // nothing close
}

TEST(Config, TypeErrorsNameKeyExpectedAndValue) {
  TrainConfig c;
  std::string msg = error_of([&] { apply_override(c, "group_size=eight"); });
  EXPECT_NE(msg.find("'group_size'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected an integer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'eight'"), std::string::npos) << msg;
  msg = error_of([&] { apply_override(c, "learning_rate=fast"); });
  EXPECT_NE(msg.find("expected a finite number"), std::string::npos) << msg;
  msg = error_of([&] { apply_override(c, "group_size=4.5"); });
  EXPECT_NE(msg.find("expected an integer"), std::string::npos) << msg;
  msg = error_of([&] { apply_override(c, "gradient_checkpointing=maybe"); });
  EXPECT_NE(msg.find("expected a boolean"), std::string::npos) << msg;
  msg = error_of([&] { apply_override(c, "loss_aggregation=grpoo"); });
  EXPECT_NE(msg.find("config key 'loss_aggregation' (--set): expected grpo, bnpo, dr_grpo or dapo, found 'grpoo'"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("did you mean 'grpo'"), std::string::npos) << msg;
  std::string path = write_temp("c.yaml", "group_size: [1, 2]\n");
  msg = error_of([&] { load_config_file(c, path); });
  EXPECT_NE(msg.find("expected a scalar value"), std::string::npos) << msg;
  path = write_temp("c.json", R"({"top_k": "lots"})");
  msg = error_of([&] { load_config_file(c, path); });
  EXPECT_NE(msg.find("'top_k'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'lots'"), std::string::npos) << msg;
}

TEST(Config, RangeErrors) {
  auto range_error = [](const std::string& assignment) {
    TrainConfig c;
    c.model_path = "m";
    apply_override(c, assignment);
    return error_of([&] { validate_config(c); });
  };
  TrainConfig ok;
  ok.model_path = "m";
  EXPECT_NO_THROW(validate_config(ok));
  std::string msg = range_error("group_size=1");
  EXPECT_NE(msg.find("'group_size' (--set): expected >= 2, found 1"), std::string::npos) << msg;
  msg = range_error("learning_rate=0");
  EXPECT_NE(msg.find("'learning_rate'"), std::string::npos) << msg;
  msg = range_error("top_p=1.5");
  EXPECT_NE(msg.find("'top_p' (--set): expected a value in (0, 1], found 1.5"), std::string::npos) << msg;
  EXPECT_NE(range_error("top_p=0").find("top_p"), std::string::npos);
  EXPECT_NE(range_error("temperature=0").find("temperature"), std::string::npos);
  EXPECT_NE(range_error("clip_eps_low=1").find("clip_eps_low"), std::string::npos);
  EXPECT_NE(range_error("grad_accum=3").find("a divisor of prompts_per_step * group_size = 64"), std::string::npos);
  EXPECT_NE(range_error("top_k=-1").find("top_k"), std::string::npos);
  msg = range_error("delta=1.1");  // inside the clip band (1 + clip_eps_high = 1.2): would cut positive advantages
  EXPECT_NE(msg.find("'delta' (--set): expected 0 (off) or > 1 + clip_eps_high, found 1.1"), std::string::npos) << msg;
  EXPECT_NE(error_of([] {
              TrainConfig c;
              apply_override(c, "importance_sampling_level=seq");
            }).find("expected token or sequence, found 'seq'"),
            std::string::npos);
  msg = range_error("top_entropy_quantile=0");
  EXPECT_NE(msg.find("'top_entropy_quantile' (--set): expected a value in (0, 1], found 0"), std::string::npos) << msg;
  msg = range_error("vllm_importance_sampling_clip_max=0");
  EXPECT_NE(msg.find("'vllm_importance_sampling_clip_max' (--set): expected > vllm_importance_sampling_clip_min = 0, found 0"),
            std::string::npos)
      << msg;
  msg = range_error("sync_ref_model=true");
  EXPECT_NE(msg.find("'sync_ref_model' (--set): expected false while beta = 0"), std::string::npos) << msg;
  msg = range_error("overlong_buffer_len=600");
  EXPECT_NE(msg.find("'overlong_buffer_len' (--set): expected <= overlong_max_len (or max_new_tokens when that is 0), found 600"),
            std::string::npos)
      << msg;
  EXPECT_NE(range_error("dynamic_sampling_max_rollouts=0").find("dynamic_sampling_max_rollouts"), std::string::npos);
  EXPECT_NE(range_error("ref_model_mixup_alpha=1.5").find("ref_model_mixup_alpha"), std::string::npos);
  EXPECT_EQ(range_error("zero_stage=3"), "config key 'zero_stage' (--set): expected 0, 1 or 2, found 3");
  EXPECT_EQ(range_error("zero_stage=-1"), "config key 'zero_stage' (--set): expected 0, 1 or 2, found -1");
  TrainConfig no_model;
  EXPECT_NE(error_of([&] { validate_config(no_model); }).find("no model path"), std::string::npos);
}

TEST(Config, FileErrors) {
  TrainConfig c;
  EXPECT_NE(error_of([&] { load_config_file(c, "/nonexistent/x.yaml"); }).find("/nonexistent/x.yaml"), std::string::npos);
  std::string path = write_temp("c.toml", "a = 1");
  EXPECT_NE(error_of([&] { load_config_file(c, path); }).find("unknown config format"), std::string::npos);
  path = write_temp("c.yaml", "group_size: 4\n  bad: [\n");
  std::string msg = error_of([&] { load_config_file(c, path); });
  EXPECT_NE(msg.find("invalid YAML"), std::string::npos) << msg;
  path = write_temp("c.json", "{\n\"group_size\": 4,\n}\n");
  msg = error_of([&] { load_config_file(c, path); });
  EXPECT_NE(msg.find(path + ":3: invalid JSON"), std::string::npos) << msg;
}

TEST(Config, DuplicateKeysAreErrors) {
  TrainConfig c;
  std::string path = write_temp("dup.yaml", "group_size: 4\nseed: 1\ngroup_size: 8\n");
  std::string msg = error_of([&] { load_config_file(c, path); });
  EXPECT_NE(msg.find(path + ":3: duplicate config key 'group_size' (first at line 1)"), std::string::npos) << msg;
  path = write_temp("dup2.yaml", "reward_weights:\n  format: 0.5\nreward_weights.format: 1\n");
  msg = error_of([&] { load_config_file(c, path); });
  EXPECT_NE(msg.find(path + ":3: duplicate config key 'reward_weights.format' (first at line 2)"), std::string::npos) << msg;
  path = write_temp("dup.json", "{\n  \"seed\": 1,\n  \"reward_weights\": {\"format\": 1, \"format\": 2},\n  \"seed\": 2\n}\n");
  msg = error_of([&] { load_config_file(c, path); });
  EXPECT_NE(msg.find(path + ": duplicate config key 'format' (lines 3 and 3)"), std::string::npos) << msg;
  path = write_temp("dup2.json", "{\n  \"seed\": 1,\n  \"top_k\": 3,\n  \"seed\": 2\n}\n");
  msg = error_of([&] { load_config_file(c, path); });
  EXPECT_NE(msg.find(path + ": duplicate config key 'seed' (lines 2 and 4)"), std::string::npos) << msg;
}

TEST(Config, IntegerOutOfRange) {
  TrainConfig c;
  std::string msg = error_of([&] { apply_override(c, "max_steps=99999999999"); });
  EXPECT_NE(msg.find("config key 'max_steps' (--set): out of range: expected an integer in [-2147483648, 2147483647], found 99999999999"),
            std::string::npos)
      << msg;
  msg = error_of([&] { apply_override(c, "max_steps=12x"); });
  EXPECT_NE(msg.find("expected an integer, found '12x'"), std::string::npos) << msg;
}

TEST(Config, YamlRoundTrip) {
  TrainConfig c;
  apply_override(c, "group_size=5");
  apply_override(c, "learning_rate=2.5e-7");
  apply_override(c, "system_prompt=Line one\nLine \"two\"");
  apply_override(c, "reward_weights.length=0.3");
  std::string path = write_temp("resolved.yaml", config_to_yaml(c));
  TrainConfig back;
  load_config_file(back, path);
  for (const auto& k : config_keys()) EXPECT_EQ(get_config_value(back, k.name), get_config_value(c, k.name)) << k.name;
}

TEST(Config, InvalidUtf8NeverEscapesAsAJsonException) {
  // YAML does not check UTF-8; JSON writing does. A bad byte in a rule's field ends in our error
  // with U+FFFD in its place (the fuzzer found nlohmann's type_error 316 escaping here), and a
  // system prompt holding one is written with U+FFFD in the resolved config.
  TrainConfig c;
  std::string msg = error_of(
      [&] { load_config_text(c, "bad.yaml", "reward_rules:\n  - {name: \"ok\", type: regex, pattern: \"x\", per_match: \"a\xC0\"}\n"); });
  EXPECT_NE(msg.find("bad.yaml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"a\xEF\xBF\xBD\""), std::string::npos) << msg;
  TrainConfig d;
  load_config_text(d, "prompt.yaml", "system_prompt: \"caf\xC3 time\"\n");
  EXPECT_NE(config_to_yaml(d).find("caf\xEF\xBF\xBD time"), std::string::npos);
}

TEST(Config, ANonScalarYamlKeyIsAnError) {
  // "? - name" makes a list the key (the fuzzer found yaml-cpp's bad-conversion exception escaping).
  TrainConfig c;
  std::string msg = error_of([&] { load_config_text(c, "k.yaml", "reward_rules:\n  ? - name\n  : 1\n"); });
  EXPECT_NE(msg.find("k.yaml:2: a key must be a name, found a sequence"), std::string::npos) << msg;
  msg = error_of([&] { load_config_text(c, "k.yaml", "? {a: 1}\n: 2\n"); });
  EXPECT_NE(msg.find("k.yaml:1: a key must be a name, found a mapping"), std::string::npos) << msg;
}

TEST(Config, HelpListsEveryKeyWithDefault) {
  std::string help = config_help();
  for (const auto& k : config_keys()) EXPECT_NE(help.find(k.name), std::string::npos) << k.name;
  EXPECT_NE(help.find("group_size                   [8]"), std::string::npos) << help;
  EXPECT_NE(help.find("learning_rate                [1e-06]"), std::string::npos) << help;
}

TEST(Config, DeviceAndDtypeAreTypedWhenSet) {
  // device and dtype are checked as they are set (the error names the key and where it came from),
  // held as typed values, and printed back as written (short dtype names as the full ones).
  TrainConfig c;
  set_config_value(c, "device", "cuda:3", "run.yaml:4");
  EXPECT_EQ(c.device.kind, DeviceSetting::Kind::Cuda);
  EXPECT_EQ(c.device.index, 3);
  EXPECT_EQ(get_config_value(c, "device"), "cuda:3");
  set_config_value(c, "device", "cuda", "--set");
  EXPECT_EQ(c.device.index, -1);
  EXPECT_EQ(get_config_value(c, "device"), "cuda");
  set_config_value(c, "device", "cpu", "--set");
  EXPECT_EQ(c.device.kind, DeviceSetting::Kind::Cpu);
  set_config_value(c, "dtype", "bf16", "--set");
  EXPECT_EQ(c.dtype, Precision::BFloat16);
  EXPECT_EQ(get_config_value(c, "dtype"), "bfloat16");
  EXPECT_EQ(error_of([&] { set_config_value(c, "device", "gpu", "run.yaml:4"); }),
            "config key 'device' (run.yaml:4): expected auto, cpu, cuda or cuda:N, found 'gpu'");
  EXPECT_NE(error_of([&] { set_config_value(c, "device", "cuda:", "--set"); }).find("expected auto, cpu, cuda or cuda:N"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { set_config_value(c, "dtype", "float64", "--set"); }),
            "config key 'dtype' (--set): expected auto, float32, bfloat16 or float16, found 'float64'; did you mean 'float32'?");
  EXPECT_EQ(c.device.kind, DeviceSetting::Kind::Cpu);  // a refused value leaves the setting as it was
}
