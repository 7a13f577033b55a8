#include "engine/types/transaction.h"

#include <algorithm>
#include <array>

namespace vouch {
namespace {

bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }

constexpr CurrencyCode Code3(const char (&s)[4]) {
  return (CurrencyCode{static_cast<unsigned char>(s[0])} << 16) |
         (CurrencyCode{static_cast<unsigned char>(s[1])} << 8) |
         CurrencyCode{static_cast<unsigned char>(s[2])};
}

// Sorted, so IsSupportedCurrency can binary-search it.
constexpr std::array<CurrencyCode, 12> kSupportedCurrencies = {
    Code3("AUD"), Code3("CAD"), Code3("CHF"), Code3("CNY"), Code3("EUR"), Code3("GBP"),
    Code3("HKD"), Code3("JPY"), Code3("NOK"), Code3("SEK"), Code3("SGD"), Code3("USD"),
};

}  // namespace

CurrencyCode PackCurrency(std::string_view code) {
  if (code.size() != 3 || !std::all_of(code.begin(), code.end(), IsUpper)) return 0;
  return (CurrencyCode(code[0]) << 16) | (CurrencyCode(code[1]) << 8) | CurrencyCode(code[2]);
}

CountryCode PackCountry(std::string_view code) {
  if (code.size() != 2 || !std::all_of(code.begin(), code.end(), IsUpper)) return 0;
  return static_cast<CountryCode>((code[0] << 8) | code[1]);
}

std::string CurrencyToString(CurrencyCode code) {
  if (code == 0) return "";
  return {char((code >> 16) & 0xff), char((code >> 8) & 0xff), char(code & 0xff)};
}

std::string CountryToString(CountryCode code) {
  if (code == 0) return "";
  return {char((code >> 8) & 0xff), char(code & 0xff)};
}

bool IsSupportedCurrency(CurrencyCode code) {
  static_assert(std::is_sorted(kSupportedCurrencies.begin(), kSupportedCurrencies.end()));
  return std::binary_search(kSupportedCurrencies.begin(), kSupportedCurrencies.end(), code);
}

}  // namespace vouch
