#include "engine/types/transaction.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "engine/types/mix.h"

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

void TransactionAttributes::Assign(std::string_view value) {
  std::memset(bytes, 0, sizeof(bytes));
  if (value.size() > kAttributesBytesMax) {
    size = kOversize;
    return;
  }
  std::memcpy(bytes, value.data(), value.size());
  size = static_cast<uint8_t>(value.size());
}

uint64_t ContentFingerprint(const Transaction& txn) {
  // Mix64 is a bijection; chaining it over each field (with distinct per-field constants so
  // that swapped fields differ) spreads any change over the whole word.
  uint64_t h = 0x766f756368667031ULL;  // "vouchfp1"
  auto add = [&h](uint64_t field, uint64_t salt) { h = Mix64(h ^ Mix64(field + salt)); };
  add(static_cast<uint64_t>(txn.amount_minor), 0x9e3779b97f4a7c15ULL);
  add(txn.source_account, 0xc2b2ae3d27d4eb4fULL);
  add(txn.destination_account, 0x165667b19e3779f9ULL);
  add(txn.currency, 0xd6e8feb86659fd93ULL);
  add(txn.merchant_id, 0xff51afd7ed558ccdULL);
  add(txn.merchant_category, 0xc4ceb9fe1a85ec53ULL);
  add(txn.country, 0x27d4eb2f165667c5ULL);
  add(txn.device_id, 0x85ebca77c2b2ae63ULL);
  if (txn.attributes.size != 0) {
    add(txn.attributes.size, 0x2545f4914f6cdd1dULL);
    const std::string_view bytes = txn.attributes.view();
    for (size_t i = 0; i < bytes.size(); i += 8) {
      uint64_t word = 0;
      std::memcpy(&word, bytes.data() + i, std::min<size_t>(8, bytes.size() - i));
      add(word, 0x9fb21c651e98df25ULL + i);
    }
  }
  return h == 0 ? 1 : h;
}

}  // namespace vouch
