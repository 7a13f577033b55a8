// The fraud rules file: every key parses, the format round-trips, and every kind of bad file is
// refused with the line named.
#include "verifiers/fraud/rules_file.h"

#include <fstream>

#include "engine/types/transaction.h"
#include "gtest/gtest.h"

namespace vouch::fraud {
namespace {

TEST(RulesFileTest, EveryKeyParses) {
  const absl::StatusOr<FraudRules> rules = ParseFraudRules(R"(
    # Demo rules
    velocity_enabled = false
    velocity_window_ms = 30000
    velocity_count_max = 7
    velocity_amount_max_minor = 5000     # cents
    anomaly_enabled = true
    anomaly_z_max = 4.5
    anomaly_min_samples = 10
    blocked_merchants = 9900001, 9900002
    blocked_countries = KP, IR
    blocked_devices =
    travel_enabled = false
    travel_window_ms = 60000
  )");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_FALSE(rules->velocity_enabled);
  EXPECT_EQ(rules->velocity_window_ns, 30'000'000'000);
  EXPECT_EQ(rules->velocity_count_max, 7u);
  EXPECT_EQ(rules->velocity_amount_max_minor, 5000);
  EXPECT_DOUBLE_EQ(rules->anomaly_z_max, 4.5);
  EXPECT_EQ(rules->anomaly_min_samples, 10u);
  EXPECT_EQ(rules->blocked_merchants, (std::vector<uint64_t>{9900001, 9900002}));
  EXPECT_EQ(rules->blocked_countries,
            (std::vector<CountryCode>{PackCountry("KP"), PackCountry("IR")}));
  EXPECT_TRUE(rules->blocked_devices.empty());
  EXPECT_FALSE(rules->travel_enabled);
  EXPECT_EQ(rules->travel_window_ns, 60'000'000'000);
}

TEST(RulesFileTest, FormatRoundTrips) {
  FraudRules rules;
  rules.blocked_merchants = {3, 1, 2};
  rules.blocked_countries = {PackCountry("RU")};
  rules.velocity_count_max = 99;
  const std::string text = FormatFraudRules(rules);
  const absl::StatusOr<FraudRules> parsed = ParseFraudRules(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(FormatFraudRules(*parsed), text);
  EXPECT_EQ(parsed->velocity_count_max, 99u);
}

TEST(RulesFileTest, BadFilesAreRefusedWithTheLineNamed) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"velocity_count_max = 5\nno equals sign here\n", "line 2"},
      {"colour = blue\n", "line 1"},
      {"velocity_count_max = many\n", "line 1"},
      {"velocity_enabled = yes\n", "line 1"},
      {"blocked_countries = KP, Narnia\n", "line 1"},
      {"velocity_window_ms = 0\n", "fraud rules"},  // Parses, fails Validate.
  };
  for (const Case& c : cases) {
    const absl::StatusOr<FraudRules> rules = ParseFraudRules(c.text);
    ASSERT_FALSE(rules.ok()) << c.text;
    EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(rules.status().message().find(c.expected), absl::string_view::npos)
        << rules.status().message();
  }
  EXPECT_EQ(LoadFraudRulesFile("/nonexistent/rules.conf").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace vouch::fraud
