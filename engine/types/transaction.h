// The in-process form of a transaction and the codes packed into it.
//
// Transaction is a plain, trivially copyable value: the ingest path copies it into a ring slot
// and the verifiers read it from there, so it never owns heap memory. Wire messages
// (proto/vouch.proto) are converted to and from it at the edge.
#ifndef VOUCH_ENGINE_TYPES_TRANSACTION_H_
#define VOUCH_ENGINE_TYPES_TRANSACTION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace vouch {

// An ISO 4217 alphabetic currency code packed into 24 bits ("USD" -> 'U'<<16|'S'<<8|'D').
// Zero means "none". Only the codes in kSupportedCurrencies are accepted on ingest.
using CurrencyCode = uint32_t;

// An ISO 3166 alpha-2 country code packed into 16 bits ("GB" -> 'G'<<8|'B'). Zero means unknown.
using CountryCode = uint16_t;

// Packs "USD" into a CurrencyCode; returns 0 unless `code` is exactly three letters A-Z.
CurrencyCode PackCurrency(std::string_view code);
// Packs "GB" into a CountryCode; returns 0 unless `code` is exactly two letters A-Z.
CountryCode PackCountry(std::string_view code);
std::string CurrencyToString(CurrencyCode code);
std::string CountryToString(CountryCode code);

// True for the currencies the engine settles (a fixed list of ISO 4217 codes).
bool IsSupportedCurrency(CurrencyCode code);

// Opaque bytes a client attaches to a transaction for the embedder's own checks (a customer
// segment, an IP address, a device score): vouch stores them, journals them, hands them to every
// verifier with the transaction (local and remote), returns them in Query and compares them for
// idempotency, and never interprets them. At most kAttributesBytesMax bytes; the encoding is the
// embedder's (key/value pairs, a packed struct, a short protobuf). Inline, so that Transaction
// stays a plain value that owns no heap memory.
inline constexpr size_t kAttributesBytesMax = 24;
struct TransactionAttributes {
  // 0..kAttributesBytesMax; kOversize marks attributes that did not fit (the wire sent more),
  // which ingest refuses (REJECTED malformed_attributes).
  static constexpr uint8_t kOversize = 0xFF;
  uint8_t size = 0;
  char bytes[kAttributesBytesMax] = {};

  std::string_view view() const {
    return size <= kAttributesBytesMax ? std::string_view(bytes, size) : std::string_view();
  }
  // Copies `value` in; more than kAttributesBytesMax bytes leaves them empty and kOversize.
  void Assign(std::string_view value);
  bool operator==(const TransactionAttributes& other) const {
    return size == other.size && view() == other.view();
  }
};

struct Transaction {
  uint64_t id = 0;  // Client-chosen, non-zero; the idempotency key.
  uint64_t source_account = 0;
  uint64_t destination_account = 0;
  int64_t amount_minor = 0;  // Minor units (cents); must be > 0.
  CurrencyCode currency = 0;
  uint32_t merchant_category = 0;  // ISO 18245 MCC.
  uint64_t merchant_id = 0;
  CountryCode country = 0;
  uint64_t device_id = 0;
  int64_t client_timestamp_ns = 0;  // As sent by the client; informational only.
  TransactionAttributes attributes;  // The embedder's own data; empty by default.
};
static_assert(std::is_trivially_copyable_v<Transaction>);

// A 64-bit fingerprint of the fields that make a transaction what it is: amount, source,
// destination, currency, merchant_id, merchant_category, country, device_id, and the attributes
// when there are any (so that a transaction without them keeps the fingerprint it had before
// attributes existed). Not the id (the
// key it is stored under) and not client_timestamp_ns (informational; a client's retry may
// stamp its own send time). Stable across processes and builds (it is journaled); never 0,
// which marks "unknown" (an answer from a journal written before fingerprints).
uint64_t ContentFingerprint(const Transaction& txn);

}  // namespace vouch

#endif  // VOUCH_ENGINE_TYPES_TRANSACTION_H_
