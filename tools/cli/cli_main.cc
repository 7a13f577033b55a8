// vouch-cli: an operator's view of a running vouchd, over the wire protocol.
//
//   vouch-cli status <id>        the transaction's state history, with times and reasons
//   vouch-cli watch              the late-failure feed (--include_verified: every outcome);
//                                runs until interrupted, or --count outcomes, or --duration_s
//   vouch-cli holds              the accounts on hold
//   vouch-cli release <account>  releases an account's hold
//   vouch-cli balances [<account>...]
//                                one consistent snapshot of the balances (no accounts: all, up to
//                                1024) and each currency's total and clearing balance
//   vouch-cli submit <id> <from> <to> <amount> [--merchant=M --currency=USD --country=GB]
//                                one transaction; prints its confirmation and outcome
//   vouch-cli create-account <id> [--currency=USD --opening_balance=0 --overdraft=0
//                                --flags=debits_must_not_exceed_credits|credits_must_not_exceed_debits
//                                --transaction_max=0 --daily_max=0 --daily_count_max=0
//                                --user_data=0]
//                                creates one account (idempotent: a retry prints EXISTS)
//   vouch-cli account <id>       an account's fields, state, balance and change history
//   vouch-cli freeze|unfreeze|close <id>
//                                changes an account's state (close: its balance must be 0)
//   vouch-cli set-limits <id> [--transaction_max=0 --daily_max=0 --daily_count_max=0]
//                                replaces an account's limits (0: none)
//   vouch-cli account-transactions <account> [--since=T] [--until=T] [--limit=N]
//                                [--before_seq=S]
//                                the account's recent transactions (debits and credits),
//                                newest first, each with its state now; T is Unix ns or a
//                                duration ago ("90s", "15m"); prints the --before_seq of the
//                                next page when there is one
// Common flags: --host, --port, --auth_token. Exit status: 0 on success, 1 when the server
// refused or the connection failed, 2 for bad usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/net/frame_codec.h"
#include "engine/types/clock.h"
#include "proto/vouch.pb.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "vouchd address.");
ABSL_FLAG(int, port, 7411, "vouchd port.");
ABSL_FLAG(std::string, auth_token, "", "Hello.auth_token, if the server requires one.");
ABSL_FLAG(bool, include_verified, false, "watch: also print VERIFIED outcomes.");
ABSL_FLAG(int64_t, count, 0, "watch: stop after this many outcomes (0: no limit).");
ABSL_FLAG(double, duration_s, 0, "watch: stop after this many seconds (0: no limit).");
ABSL_FLAG(uint64_t, merchant, 1, "submit: merchant id.");
ABSL_FLAG(std::string, currency, "USD", "submit, create-account: currency.");
ABSL_FLAG(int64_t, opening_balance, 0, "create-account: opening deposit, minor units.");
ABSL_FLAG(int64_t, overdraft, 0, "create-account: overdraft limit, minor units.");
ABSL_FLAG(std::string, flags, "",
          "create-account: debits_must_not_exceed_credits or credits_must_not_exceed_debits.");
ABSL_FLAG(int64_t, transaction_max, 0,
          "create-account, set-limits: per-transaction limit, minor units (0: none).");
ABSL_FLAG(int64_t, daily_max, 0, "create-account, set-limits: daily amount limit (0: none).");
ABSL_FLAG(uint32_t, daily_count_max, 0, "create-account, set-limits: daily count (0: none).");
ABSL_FLAG(uint64_t, user_data, 0, "create-account: opaque user data.");
ABSL_FLAG(std::string, country, "GB", "submit: country.");
ABSL_FLAG(std::string, attributes, "",
          "submit: Transaction.attributes, opaque bytes for the embedder's checks (at most 24; "
          "C escapes such as \\x00 are decoded).");
ABSL_FLAG(std::string, since, "",
          "account-transactions: received at or after this: Unix ns, or a duration ago "
          "(\"15m\"). Empty: no bound.");
ABSL_FLAG(std::string, until, "",
          "account-transactions: received at or before this (as --since). Empty: no bound.");
ABSL_FLAG(uint32_t, limit, 20, "account-transactions: entries to print (the server caps a page "
                               "at 500).");
ABSL_FLAG(uint64_t, before_seq, 0,
          "account-transactions: only seqs below this (the next page); 0: the newest.");

namespace vouch {
namespace {

constexpr size_t kFrameMax = 1 << 20;

// A blocking connection that says Hello and reads whole ServerMessages.
class Connection {
 public:
  Connection() : decoder_(kFrameMax) {}
  ~Connection() {
    if (fd_ >= 0) close(fd_);
  }

  bool Open() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(absl::GetFlag(FLAGS_port)));
    if (inet_pton(AF_INET, absl::GetFlag(FLAGS_host).c_str(), &address.sin_addr) != 1 ||
        connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      std::fprintf(stderr, "vouch-cli: cannot connect to %s:%d\n",
                   absl::GetFlag(FLAGS_host).c_str(), absl::GetFlag(FLAGS_port));
      return false;
    }
    v1::ClientMessage hello;
    hello.mutable_hello()->set_auth_token(absl::GetFlag(FLAGS_auth_token));
    return Send(hello);
  }

  bool Send(const v1::ClientMessage& message) {
    std::string frame;
    net::AppendFrame(message, kFrameMax, &frame);
    for (size_t sent = 0; sent < frame.size();) {
      const ssize_t n = send(fd_, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // The next message; false on timeout (timeout_ms >= 0), close, or an Error (printed).
  bool Read(v1::ServerMessage* message, int timeout_ms = 10'000) {
    for (;;) {
      switch (decoder_.Next(message)) {
        case net::FrameDecoder::Result::kFrame:
          if (message->has_welcome()) continue;  // The reply to Hello: nothing to print.
          if (message->has_error()) {
            std::fprintf(stderr, "vouch-cli: server error %s: %s\n",
                         v1::ErrorCode_Name(message->error().code()).c_str(),
                         message->error().message().c_str());
            return false;
          }
          return true;
        case net::FrameDecoder::Result::kError:
          std::fprintf(stderr, "vouch-cli: bad frame from the server\n");
          return false;
        case net::FrameDecoder::Result::kNeedMore:
          break;
      }
      pollfd poll_fd = {fd_, POLLIN, 0};
      if (poll(&poll_fd, 1, timeout_ms) <= 0) return false;
      const ssize_t n = read(fd_, decoder_.WritePointer(), decoder_.WritableBytes());
      if (n <= 0) {
        std::fprintf(stderr, "vouch-cli: the server closed the connection\n");
        return false;
      }
      decoder_.Commit(static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  net::FrameDecoder decoder_;
};

std::string Time(int64_t unix_ns) { return unix_ns == 0 ? "-" : FormatUnixTimeNs(unix_ns); }

// Enum names without their prefix: "STATE_KIND_LATE_FAILED" -> "LATE_FAILED".
std::string Short(const std::string& name, const char* prefix) {
  return name.rfind(prefix, 0) == 0 ? name.substr(std::string(prefix).size()) : name;
}

// " code=N" for an embedder's verifier's own reason code; "" when there is none.
std::string VerifierCode(uint32_t code) {
  return code == 0 ? std::string() : absl::StrCat(" code=", code);
}

void PrintOutcome(const v1::Outcome& o) {
  std::printf("%s seq=%llu id=%llu %s verifier=%s reason=%s%s account=%llu amount=%lld %s%s%s\n",
              Time(o.decided_unix_ns()).c_str(), static_cast<unsigned long long>(o.seq()),
              static_cast<unsigned long long>(o.transaction_id()),
              Short(v1::OutcomeKind_Name(o.kind()), "OUTCOME_KIND_").c_str(),
              Short(v1::Verifier_Name(o.verifier()), "VERIFIER_").c_str(),
              Short(v1::Reason_Name(o.reason()), "REASON_").c_str(),
              VerifierCode(o.verifier_reason()).c_str(),
              static_cast<unsigned long long>(o.source_account()),
              static_cast<long long>(o.amount()), o.currency().c_str(),
              o.reversed() ? " reversed" : "", o.account_held() ? " account_held" : "");
  std::fflush(stdout);
}

int Status(Connection& c, uint64_t id) {
  v1::ClientMessage query;
  query.mutable_query()->set_transaction_id(id);
  v1::ServerMessage reply;
  if (!c.Send(query) || !c.Read(&reply) || !reply.has_status()) return 1;
  if (!reply.status().found()) {
    std::printf("transaction %llu: not found (never submitted, or older than the server keeps)\n",
                static_cast<unsigned long long>(id));
    return 1;
  }
  std::printf("transaction %llu%s\n", static_cast<unsigned long long>(id),
              reply.status().attributes().empty()
                  ? ""
                  : absl::StrCat(" attributes=\"", absl::CHexEscape(reply.status().attributes()),
                                 "\"")
                        .c_str());
  for (const v1::StateChange& change : reply.status().history()) {
    std::string detail;
    if (change.verifier() != v1::VERIFIER_NONE) {
      detail += " verifier=" + Short(v1::Verifier_Name(change.verifier()), "VERIFIER_");
    }
    if (change.state() == v1::STATE_KIND_FRAUD_VERDICT ||
        change.state() == v1::STATE_KIND_LEDGER_VERDICT ||
        change.state() == v1::STATE_KIND_VERIFIER_VERDICT ||
        change.state() == v1::STATE_KIND_LATE_VERDICT) {
      detail += change.pass() ? " pass" : " fail";
    }
    if (change.reason() != v1::REASON_NONE) {
      detail += " reason=" + Short(v1::Reason_Name(change.reason()), "REASON_");
    }
    detail += VerifierCode(change.verifier_reason());
    std::printf("  %s  %-15s%s\n", Time(change.unix_ns()).c_str(),
                Short(v1::StateKind_Name(change.state()), "STATE_KIND_").c_str(), detail.c_str());
  }
  return 0;
}

int Watch(Connection& c) {
  v1::ClientMessage subscribe;
  subscribe.mutable_subscribe()->set_include_verified(absl::GetFlag(FLAGS_include_verified));
  if (!c.Send(subscribe)) return 1;
  const int64_t count_max = absl::GetFlag(FLAGS_count);
  const double duration_s = absl::GetFlag(FLAGS_duration_s);
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(duration_s * 1000));
  int64_t seen = 0;
  auto last_ping = std::chrono::steady_clock::now();
  while (count_max == 0 || seen < count_max) {
    if (duration_s > 0 && std::chrono::steady_clock::now() >= end) break;
    // Ping now and then: the server closes connections that send nothing for its idle timeout.
    if (std::chrono::steady_clock::now() - last_ping > std::chrono::seconds(20)) {
      v1::ClientMessage ping;
      ping.mutable_ping();
      if (!c.Send(ping)) return 1;
      last_ping = std::chrono::steady_clock::now();
    }
    v1::ServerMessage message;
    if (!c.Read(&message, 200)) continue;
    if (message.has_outcome()) {
      PrintOutcome(message.outcome());
      ++seen;
    }
  }
  return 0;
}

int Holds(Connection& c) {
  v1::ClientMessage list;
  list.mutable_list_holds();
  v1::ServerMessage reply;
  if (!c.Send(list) || !c.Read(&reply) || !reply.has_holds()) return 1;
  std::printf("%d accounts on hold\n", reply.holds().accounts_size());
  for (const uint64_t account : reply.holds().accounts()) {
    std::printf("  %llu\n", static_cast<unsigned long long>(account));
  }
  return 0;
}

int Release(Connection& c, uint64_t account) {
  v1::ClientMessage release;
  release.mutable_release_hold()->set_account(account);
  v1::ServerMessage reply;
  if (!c.Send(release) || !c.Read(&reply) || !reply.has_hold_released()) return 1;
  if (!reply.hold_released().refused().empty()) {
    std::fprintf(stderr, "account %llu: release refused, nothing changed (retry): %s\n",
                 static_cast<unsigned long long>(account),
                 reply.hold_released().refused().c_str());
    return 1;
  }
  std::printf("account %llu: %s\n", static_cast<unsigned long long>(account),
              reply.hold_released().was_held() ? "released" : "was not on hold");
  return 0;
}

int Balances(Connection& c, const std::vector<uint64_t>& accounts) {
  v1::ClientMessage read;
  for (const uint64_t account : accounts) read.mutable_read_balances()->add_accounts(account);
  read.mutable_read_balances();  // Set even when empty: no accounts means all of them.
  v1::ServerMessage reply;
  if (!c.Send(read) || !c.Read(&reply) || !reply.has_balances()) return 1;
  const v1::Balances& balances = reply.balances();
  if (balances.result() != v1::BALANCES_RESULT_OK) {
    std::fprintf(stderr, "vouch-cli: balance read not served: %s (retry)\n",
                 Short(v1::BalancesResult_Name(balances.result()), "BALANCES_RESULT_").c_str());
    return 1;
  }
  std::printf("%-20s %-8s %20s %20s\n", "account", "currency", "balance_minor", "overdraft_minor");
  for (const v1::AccountBalance& account : balances.accounts()) {
    std::printf("%-20llu %-8s %20lld %20lld\n", static_cast<unsigned long long>(account.account()),
                account.currency().c_str(), static_cast<long long>(account.balance_minor()),
                static_cast<long long>(account.overdraft_limit_minor()));
  }
  if (balances.truncated()) std::printf("(more accounts not shown)\n");
  for (const v1::CurrencyTotal& total : balances.currencies()) {
    std::printf("%s total_minor=%lld clearing_minor=%lld\n", total.currency().c_str(),
                static_cast<long long>(total.total_minor()),
                static_cast<long long>(total.clearing_minor()));
  }
  std::printf("checked_below_seq=%llu\n",
              static_cast<unsigned long long>(balances.checked_below_seq()));
  return 0;
}

int Submit(Connection& c, const std::vector<uint64_t>& args) {
  v1::ClientMessage submit;
  v1::Transaction* txn = submit.mutable_submit()->add_transactions();
  txn->set_id(args[0]);
  txn->set_source_account(args[1]);
  txn->set_destination_account(args[2]);
  txn->set_amount(static_cast<int64_t>(args[3]));
  txn->set_currency(absl::GetFlag(FLAGS_currency));
  txn->set_country(absl::GetFlag(FLAGS_country));
  txn->set_merchant_id(absl::GetFlag(FLAGS_merchant));
  std::string attributes;
  std::string unescape_error;
  if (!absl::CUnescape(absl::GetFlag(FLAGS_attributes), &attributes, &unescape_error)) {
    std::fprintf(stderr, "vouch-cli: --attributes: %s\n", unescape_error.c_str());
    return 2;
  }
  txn->set_attributes(attributes);
  txn->set_merchant_category(5411);
  v1::ServerMessage reply;
  if (!c.Send(submit) || !c.Read(&reply) || !reply.has_confirmation()) return 1;
  const v1::Confirmation& conf = reply.confirmation();
  std::printf("confirmation id=%llu seq=%llu %s reason=%s%s\n",
              static_cast<unsigned long long>(conf.transaction_id()),
              static_cast<unsigned long long>(conf.seq()),
              Short(v1::ConfirmStatus_Name(conf.status()), "CONFIRM_STATUS_").c_str(),
              Short(v1::Reason_Name(conf.reason()), "REASON_").c_str(),
              conf.duplicate() ? " duplicate" : "");
  if (conf.status() != v1::CONFIRM_STATUS_CONFIRMED || conf.duplicate()) return 0;
  while (c.Read(&reply)) {
    if (reply.has_outcome()) {
      PrintOutcome(reply.outcome());
      return 0;
    }
  }
  return 1;
}

v1::AccountLimits LimitsFromFlags() {
  v1::AccountLimits limits;
  limits.set_transaction_minor_max(absl::GetFlag(FLAGS_transaction_max));
  limits.set_daily_minor_max(absl::GetFlag(FLAGS_daily_max));
  limits.set_daily_count_max(absl::GetFlag(FLAGS_daily_count_max));
  return limits;
}

int CreateAccount(Connection& c, uint64_t id) {
  v1::ClientMessage create;
  v1::Account* account = create.mutable_create_accounts()->add_accounts();
  account->set_id(id);
  account->set_currency(absl::GetFlag(FLAGS_currency));
  account->set_opening_balance_minor(absl::GetFlag(FLAGS_opening_balance));
  account->set_overdraft_limit_minor(absl::GetFlag(FLAGS_overdraft));
  const std::string flags = absl::GetFlag(FLAGS_flags);
  if (flags == "debits_must_not_exceed_credits") {
    account->set_flags(v1::ACCOUNT_FLAG_DEBITS_MUST_NOT_EXCEED_CREDITS);
  } else if (flags == "credits_must_not_exceed_debits") {
    account->set_flags(v1::ACCOUNT_FLAG_CREDITS_MUST_NOT_EXCEED_DEBITS);
  } else if (!flags.empty()) {
    std::fprintf(stderr, "vouch-cli: unknown --flags=%s\n", flags.c_str());
    return 2;
  }
  *account->mutable_limits() = LimitsFromFlags();
  account->set_user_data(absl::GetFlag(FLAGS_user_data));
  v1::ServerMessage reply;
  if (!c.Send(create) || !c.Read(&reply) || !reply.has_accounts_created() ||
      reply.accounts_created().results_size() != 1) {
    return 1;
  }
  const v1::AccountsCreated::Entry& entry = reply.accounts_created().results(0);
  std::printf("account %llu: %s%s%s\n", static_cast<unsigned long long>(id),
              Short(v1::CreateAccountResult_Name(entry.result()), "CREATE_ACCOUNT_RESULT_").c_str(),
              entry.message().empty() ? "" : ": ", entry.message().c_str());
  return entry.result() == v1::CREATE_ACCOUNT_RESULT_CREATED ||
                 entry.result() == v1::CREATE_ACCOUNT_RESULT_EXISTS
             ? 0
             : 1;
}

int Account(Connection& c, uint64_t id) {
  v1::ClientMessage lookup;
  lookup.mutable_lookup_account()->set_account(id);
  v1::ServerMessage reply;
  if (!c.Send(lookup) || !c.Read(&reply) || !reply.has_account_info()) return 1;
  const v1::AccountInfo& info = reply.account_info();
  if (info.result() != v1::ACCOUNT_REQUEST_RESULT_OK) {
    std::fprintf(stderr, "account %llu: %s %s\n", static_cast<unsigned long long>(id),
                 Short(v1::AccountRequestResult_Name(info.result()), "ACCOUNT_REQUEST_RESULT_")
                     .c_str(),
                 info.message().c_str());
    return 1;
  }
  const v1::Account& fields = info.fields();
  std::printf("account %llu %s %s%s\n", static_cast<unsigned long long>(id),
              fields.currency().c_str(),
              Short(v1::AccountState_Name(info.state()), "ACCOUNT_STATE_").c_str(),
              info.on_hold() ? " on_hold" : "");
  std::printf("  balance_minor=%lld overdraft_limit_minor=%lld flags=%u user_data=%llu\n",
              static_cast<long long>(info.balance_minor()),
              static_cast<long long>(fields.overdraft_limit_minor()), fields.flags(),
              static_cast<unsigned long long>(fields.user_data()));
  std::printf("  limits: transaction_minor_max=%lld daily_minor_max=%lld daily_count_max=%u\n",
              static_cast<long long>(fields.limits().transaction_minor_max()),
              static_cast<long long>(fields.limits().daily_minor_max()),
              fields.limits().daily_count_max());
  std::printf("  unverified: %llu transactions, %lld minor\n",
              static_cast<unsigned long long>(info.unverified_count()),
              static_cast<long long>(info.unverified_minor()));
  for (const v1::AccountChange& change : info.history()) {
    std::printf("  %s  %s\n", Time(change.unix_ns()).c_str(),
                Short(v1::AccountChangeKind_Name(change.kind()), "ACCOUNT_CHANGE_KIND_").c_str());
  }
  return 0;
}

// "" -> 0 (no bound); digits -> Unix ns; a duration ("15m") -> that long before now.
bool ParseTime(const std::string& text, int64_t* unix_ns) {
  *unix_ns = 0;
  if (text.empty()) return true;
  if (absl::SimpleAtoi(text, unix_ns)) return true;
  absl::Duration ago;
  if (!absl::ParseDuration(text, &ago)) return false;
  *unix_ns = absl::ToUnixNanos(absl::Now() - ago);
  return true;
}

int AccountTransactions(Connection& c, uint64_t account) {
  v1::ClientMessage message;
  v1::QueryAccount* query = message.mutable_query_account();
  int64_t since_unix_ns = 0;
  int64_t until_unix_ns = 0;
  if (!ParseTime(absl::GetFlag(FLAGS_since), &since_unix_ns) ||
      !ParseTime(absl::GetFlag(FLAGS_until), &until_unix_ns)) {
    std::fprintf(stderr, "vouch-cli: --since/--until: Unix ns or a duration such as 15m\n");
    return 2;
  }
  query->set_account(account);
  query->set_since_unix_ns(since_unix_ns);
  query->set_until_unix_ns(until_unix_ns);
  query->set_limit(absl::GetFlag(FLAGS_limit));
  query->set_before_seq(absl::GetFlag(FLAGS_before_seq));
  v1::ServerMessage reply;
  if (!c.Send(message) || !c.Read(&reply) || !reply.has_account_transactions()) return 1;
  const v1::AccountTransactions& page = reply.account_transactions();
  std::printf("account %llu: %d transactions, newest first (kept from seq %llu)\n",
              static_cast<unsigned long long>(account), page.transactions_size(),
              static_cast<unsigned long long>(page.oldest_kept_seq()));
  for (const v1::AccountTransactionEntry& e : page.transactions()) {
    std::string detail;
    if (e.verifier() != v1::VERIFIER_NONE) {
      detail += " verifier=" + Short(v1::Verifier_Name(e.verifier()), "VERIFIER_");
    }
    if (e.reason() != v1::REASON_NONE) {
      detail += " reason=" + Short(v1::Reason_Name(e.reason()), "REASON_");
    }
    detail += VerifierCode(e.verifier_reason());
    std::printf("  %s seq=%llu id=%llu %s %s=%llu amount=%lld %s %-12s%s%s\n",
                Time(e.received_unix_ns()).c_str(), static_cast<unsigned long long>(e.seq()),
                static_cast<unsigned long long>(e.transaction_id()),
                e.debit() ? "debit " : "credit", e.debit() ? "to" : "from",
                static_cast<unsigned long long>(e.debit() ? e.destination_account()
                                                          : e.source_account()),
                static_cast<long long>(e.amount()), e.currency().c_str(),
                Short(v1::AccountTransactionState_Name(e.state()),
                      "ACCOUNT_TRANSACTION_STATE_").c_str(),
                e.held() ? " held" : "", detail.c_str());
  }
  if (page.more()) {
    std::printf("more: --before_seq=%llu\n",
                static_cast<unsigned long long>(page.next_before_seq()));
  }
  return 0;
}

int ChangeAccount(Connection& c, uint64_t id, v1::AccountAction action) {
  v1::ClientMessage change;
  change.mutable_change_account()->set_account(id);
  change.mutable_change_account()->set_action(action);
  if (action == v1::ACCOUNT_ACTION_SET_LIMITS) {
    *change.mutable_change_account()->mutable_limits() = LimitsFromFlags();
  }
  v1::ServerMessage reply;
  if (!c.Send(change) || !c.Read(&reply) || !reply.has_account_changed()) return 1;
  const v1::AccountChanged& changed = reply.account_changed();
  std::printf("account %llu: %s %s%s%s\n", static_cast<unsigned long long>(id),
              Short(v1::AccountAction_Name(action), "ACCOUNT_ACTION_").c_str(),
              Short(v1::AccountRequestResult_Name(changed.result()), "ACCOUNT_REQUEST_RESULT_")
                  .c_str(),
              changed.message().empty() ? "" : ": ", changed.message().c_str());
  return changed.result() == v1::ACCOUNT_REQUEST_RESULT_OK ? 0 : 1;
}

// The ChangeAccount action a command names, or UNSPECIFIED.
v1::AccountAction ActionOf(const std::string& command) {
  if (command == "freeze") return v1::ACCOUNT_ACTION_FREEZE;
  if (command == "unfreeze") return v1::ACCOUNT_ACTION_UNFREEZE;
  if (command == "close") return v1::ACCOUNT_ACTION_CLOSE;
  if (command == "set-limits") return v1::ACCOUNT_ACTION_SET_LIMITS;
  return v1::ACCOUNT_ACTION_UNSPECIFIED;
}

bool ParseIds(const std::vector<char*>& words, size_t first, size_t count,
              std::vector<uint64_t>* out) {
  if (words.size() != first + count) return false;
  for (size_t i = first; i < words.size(); ++i) {
    uint64_t value = 0;
    if (!absl::SimpleAtoi(words[i], &value)) return false;
    out->push_back(value);
  }
  return true;
}

int Run(const std::vector<char*>& words) {
  if (words.size() < 2) return -1;
  const std::string command = words[1];
  std::vector<uint64_t> args;
  const bool usage_ok = (command == "status" && ParseIds(words, 2, 1, &args)) ||
                        (command == "release" && ParseIds(words, 2, 1, &args)) ||
                        (command == "submit" && ParseIds(words, 2, 4, &args)) ||
                        (command == "account-transactions" && ParseIds(words, 2, 1, &args)) ||
                        (command == "balances" && words.size() <= 2 + 1024 &&
                         ParseIds(words, 2, words.size() - 2, &args)) ||
                        ((command == "watch" || command == "holds") && words.size() == 2) ||
                        ((command == "create-account" || command == "account" ||
                          ActionOf(command) != v1::ACCOUNT_ACTION_UNSPECIFIED) &&
                         ParseIds(words, 2, 1, &args));
  if (!usage_ok) return -1;
  Connection connection;
  if (!connection.Open()) return 1;
  if (command == "status") return Status(connection, args[0]);
  if (command == "watch") return Watch(connection);
  if (command == "holds") return Holds(connection);
  if (command == "release") return Release(connection, args[0]);
  if (command == "balances") return Balances(connection, args);
  if (command == "create-account") return CreateAccount(connection, args[0]);
  if (command == "account") return Account(connection, args[0]);
  if (ActionOf(command) != v1::ACCOUNT_ACTION_UNSPECIFIED) {
    return ChangeAccount(connection, args[0], ActionOf(command));
  }
  if (command == "account-transactions") return AccountTransactions(connection, args[0]);
  return Submit(connection, args);
}

}  // namespace
}  // namespace vouch

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "vouch-cli [flags] status <id> | watch | holds | release <account> | "
      "submit <id> <from> <to> <amount> | balances [<account>...] | create-account <id> | "
      "account <id> | freeze|unfreeze|close|set-limits <id> | "
      "account-transactions <account> [--since=T --until=T --limit=N --before_seq=S]");
  const std::vector<char*> words = absl::ParseCommandLine(argc, argv);
  const int status = vouch::Run(words);
  if (status < 0) {
    // ProgramUsageMessage is a string_view, not a C string: %s would read past it.
    const std::string usage(absl::ProgramUsageMessage());
    std::fprintf(stderr, "usage: %s\n", usage.c_str());
    return 2;
  }
  return status;
}
