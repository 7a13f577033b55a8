#include "tests/engine/simulation/held_simulator.h"

#include <deque>
#include <filesystem>
#include <memory>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "engine/testing/engine_test_peer.h"
#include "engine/net/frame_codec.h"
#include "engine/server/internal/request_handler.h"
#include "engine/server/outcome_window.h"
#include "proto/vouch.pb.h"

namespace vouch::simulation {
namespace {

using server::internal::Connection;
using server::internal::RequestHandler;

constexpr int kClients = 3;
constexpr uint64_t kAccounts = 20;
constexpr uint64_t kBlockedMerchant = 666;
constexpr int64_t kHeldAmount = 200'000;  // >= hold_amount_minor_min: held in hybrid mode.

struct Answer {
  v1::ConfirmStatus status = v1::CONFIRM_STATUS_UNSPECIFIED;
  v1::Reason reason = v1::REASON_NONE;
  uint64_t seq = 0;
  bool held = false;
  int outcomes = 0;  // Outcome frames seen (a CONFIRMED, unheld answer is due exactly one).
  bool original_told = false;  // The non-duplicate Confirmation has been seen.
};

class HeldSimulation {
 public:
  HeldSimulation(uint64_t seed, const std::string& work_dir)
      : seed_(seed), rng_(seed), dir_(absl::StrCat(work_dir, "/held-seed-", seed)) {}

  HeldSeedResult Run();

 private:
  uint64_t Uniform(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  bool Chance(int percent) { return Uniform(100) < static_cast<uint64_t>(percent); }
  bool Setup();
  v1::Transaction NewTransaction();
  void SubmitSome(int client);
  void StepStages();
  void Turn();
  void ReadAll();
  void Check(int client, const v1::ServerMessage& message);
  void OnConfirmation(int client, const v1::Confirmation& c);
  void OnOutcome(const v1::Outcome& o);
  bool Settled() const;
  void FinalChecks();
  void Fail(const std::string& why) {
    if (result_.ok) result_.failure = absl::StrCat("step ", step_, ": ", why);
    result_.ok = false;
  }

  const uint64_t seed_;
  std::mt19937_64 rng_;
  const std::string dir_;
  HeldSeedResult result_;
  uint64_t step_ = 0;

  PolicyMode mode_ = PolicyMode::kHybrid;
  AckPolicy ack_ = AckPolicy::kMemory;
  ManualClock clock_;
  server::ServerOptions server_options_;
  std::unique_ptr<server::OutcomeWindow> window_;
  std::unique_ptr<Engine> engine_;
  server::internal::Shared shared_;
  std::unique_ptr<RequestHandler> handler_;
  std::vector<std::unique_ptr<Connection>> clients_;

  // The model: what each client submitted and was told.
  std::deque<uint64_t> expecting_[kClients];  // Ids awaiting their Confirmation, in order.
  bool welcomed_[kClients] = {};  // Each session's first message is its Welcome, once.
  absl::flat_hash_map<uint64_t, v1::Transaction> submitted_;
  std::vector<uint64_t> submitted_ids_;
  absl::flat_hash_map<uint64_t, Answer> answers_;  // First answer told per id (not BUSY).
  absl::flat_hash_set<uint64_t> held_seqs_;
  uint64_t next_id_ = 1;
  uint64_t holds_seen_ = 0;  // Outcome frames with account_held.
};

bool HeldSimulation::Setup() {
  mode_ = Chance(50) ? PolicyMode::kHybrid : PolicyMode::kSync;
  const AckPolicy acks[] = {AckPolicy::kMemory, AckPolicy::kWritten, AckPolicy::kDurable};
  ack_ = acks[Uniform(3)];
  Options options;
  options.inline_mode = true;
  options.clock = &clock_;
  options.in_flight_capacity = 64;
  options.idempotency_window = 1 << 12;
  options.history_capacity = 1 << 12;
  options.fraud_account_capacity = 64;
  options.ledger_account_capacity = kAccounts;
  options.stage_batch_max = 1 + static_cast<int>(Uniform(16));
  options.verification_deadline_ns = 1'000'000 * static_cast<int64_t>(1 + Uniform(20));
  options.policy.mode = mode_;
  options.policy.hold_amount_minor_min = kHeldAmount;
  options.fraud_rules.blocked_merchants = {kBlockedMerchant};
  options.fraud_rules.velocity_enabled = false;
  options.fraud_rules.anomaly_enabled = false;
  options.fraud_rules.travel_enabled = false;
  for (uint64_t id = 1; id <= kAccounts; ++id) {
    options.accounts.push_back({id, PackCurrency("USD"), 1'000'000, 0});
  }
  options.durability.ack = ack_;
  if (ack_ != AckPolicy::kMemory) {
    std::filesystem::remove_all(dir_);
    options.durability.dir = dir_;
    options.durability.segment_bytes_max = 64 * 1024;
  }
  // Small: the window's writer laps a handler that does not route every step.
  window_ = std::make_unique<server::OutcomeWindow>(size_t{16} << Uniform(3), 1);
  options.outcome_sink = window_.get();
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(std::move(options));
  if (!engine.ok() || !(*engine)->Start().ok()) {
    Fail(absl::StrCat("engine: ", engine.status().ToString()));
    return false;
  }
  engine_ = *std::move(engine);
  shared_.options = &server_options_;
  shared_.engine = engine_.get();
  shared_.window = window_.get();
  shared_.threads = {nullptr};  // One I/O thread; the handler reads only the count.
  handler_ = std::make_unique<RequestHandler>(0, &shared_);
  handler_->StartAt(window_->end());
  handler_->SetNow(clock_.NowNs());
  for (int c = 0; c < kClients; ++c) {
    clients_.push_back(std::make_unique<Connection>(-1, c + 1, server_options_.frame_bytes_max,
                                                    clock_.NowNs()));
    v1::ClientMessage hello;
    hello.mutable_hello()->set_client_name(absl::StrCat("client-", c));
    std::string frame;
    net::AppendFrame(hello, server_options_.frame_bytes_max, &frame);
    clients_[c]->decoder.Append(frame.data(), frame.size());
    handler_->HandleFrames(*clients_[c]);
  }
  return true;
}

v1::Transaction HeldSimulation::NewTransaction() {
  v1::Transaction txn;
  txn.set_id(next_id_++);
  const uint64_t from = 1 + Uniform(kAccounts);
  txn.set_source_account(from);
  txn.set_destination_account(1 + (from + Uniform(kAccounts - 1)) % kAccounts);
  txn.set_amount(Chance(40) ? kHeldAmount : static_cast<int64_t>(10 + Uniform(500)));
  txn.set_currency("USD");
  txn.set_merchant_id(Chance(10) ? kBlockedMerchant : 1);
  txn.set_merchant_category(5411);
  txn.set_country("GB");
  txn.set_device_id(77);
  return txn;
}

void HeldSimulation::SubmitSome(int client) {
  v1::ClientMessage message;
  const int count = 1 + static_cast<int>(Uniform(4));
  for (int i = 0; i < count; ++i) {
    v1::Transaction txn;
    if (!submitted_ids_.empty() && Chance(15)) {
      txn = submitted_[submitted_ids_[Uniform(submitted_ids_.size())]];  // Resubmitted.
    } else {
      txn = NewTransaction();
      submitted_[txn.id()] = txn;
      submitted_ids_.push_back(txn.id());
    }
    *message.mutable_submit()->add_transactions() = txn;
    expecting_[client].push_back(txn.id());
  }
  std::string frame;
  net::AppendFrame(message, server_options_.frame_bytes_max, &frame);
  Connection& connection = *clients_[client];
  if (connection.decoder.Append(frame.data(), frame.size()) != frame.size()) {
    Fail("the decoder did not take a whole frame");
    return;
  }
  handler_->HandleFrames(connection);  // Returns at once: nothing here waits for verification.
}

void HeldSimulation::StepStages() {
  const InlineStage stages[] = {InlineStage::kFraud, InlineStage::kLedger,
                                InlineStage::kReconcile, InlineStage::kJournal};
  const int turns = static_cast<int>(Uniform(7));
  for (int i = 0; i < turns; ++i) (void)engine_->StepStage(stages[Uniform(4)]);
}

void HeldSimulation::Turn() {
  handler_->RouteOutcomes();
  handler_->ResendAll();
  handler_->AwaitTurnAck();
}

void HeldSimulation::ReadAll() {
  for (int c = 0; c < kClients; ++c) {
    Connection& connection = *clients_[c];
    net::FrameDecoder decoder(1 << 20);
    decoder.Append(connection.outbound.data() + connection.outbound_sent,
                   connection.pending_bytes());
    connection.outbound.clear();
    connection.outbound_sent = 0;
    v1::ServerMessage message;
    while (decoder.Next(&message) == net::FrameDecoder::Result::kFrame) Check(c, message);
  }
  for (Connection* dirty : handler_->dirty()) dirty->dirty = false;
  handler_->dirty().clear();
}

void HeldSimulation::Check(int client, const v1::ServerMessage& message) {
  if (message.has_welcome() != !welcomed_[client]) {
    Fail(absl::StrCat("client ", client, message.has_welcome() ? " got a second Welcome"
                                                               : " got a message before Welcome"));
    return;
  }
  if (message.has_welcome()) {
    welcomed_[client] = true;
  } else if (message.has_confirmation()) {
    OnConfirmation(client, message.confirmation());
  } else if (message.has_outcome()) {
    OnOutcome(message.outcome());
  } else {
    Fail(absl::StrCat("client ", client, " got an unexpected message: ", message.DebugString()));
  }
}

void HeldSimulation::OnConfirmation(int client, const v1::Confirmation& c) {
  std::deque<uint64_t>& expecting = expecting_[client];
  if (expecting.empty() || expecting.front() != c.transaction_id()) {
    Fail(absl::StrCat("client ", client, ": Confirmation of id ", c.transaction_id(),
                      " out of submission order (expected ",
                      expecting.empty() ? 0 : expecting.front(), ")"));
    return;
  }
  expecting.pop_front();
  if (c.status() == v1::CONFIRM_STATUS_BUSY) return;  // Nothing recorded; may be retried.
  if (c.held()) {
    if (c.status() != v1::CONFIRM_STATUS_CONFIRMED && c.status() != v1::CONFIRM_STATUS_REJECTED) {
      Fail(absl::StrCat("held id ", c.transaction_id(), ": not a final answer"));
    }
    // The original and any duplicate alike: the answer exists only once the outcome is kept.
    if (EngineTestPeer::Journal(*engine_) != nullptr && EngineTestPeer::Journal(*engine_)->outcomes_acked_below() <= c.seq()) {
      Fail(absl::StrCat("held id ", c.transaction_id(), " seq ", c.seq(),
                        " answered before its outcome record was kept"));
    }
    held_seqs_.insert(c.seq());
  }
  if (c.duplicate()) ++result_.duplicates;
  if (!c.duplicate() && c.held()) ++result_.held_answers;
  // Another connection's resubmission may be answered (duplicate) before the original reaches
  // its own connection: whichever comes first, every answer for an id must agree.
  auto [known, inserted] = answers_.try_emplace(c.transaction_id());
  Answer& answer = known->second;
  if (inserted) {
    answer = {c.status(), c.reason(), c.seq(), c.held(), 0, false};
  } else if (answer.status != c.status() || answer.seq != c.seq() || answer.held != c.held()) {
    Fail(absl::StrCat("id ", c.transaction_id(), ": answered ", c.status(), " seq ", c.seq(),
                      ", first told ", answer.status, " seq ", answer.seq));
  }
  if (!c.duplicate()) {
    if (answer.original_told) {
      Fail(absl::StrCat("id ", c.transaction_id(), ": a second original answer"));
    }
    answer.original_told = true;
  }
}

void HeldSimulation::OnOutcome(const v1::Outcome& o) {
  ++result_.outcomes;
  if (o.held() || held_seqs_.contains(o.seq())) {
    Fail(absl::StrCat("held id ", o.transaction_id(), " also got an Outcome frame"));
    return;
  }
  auto known = answers_.find(o.transaction_id());
  if (known == answers_.end() || known->second.status != v1::CONFIRM_STATUS_CONFIRMED ||
      known->second.held || known->second.seq != o.seq()) {
    Fail(absl::StrCat("Outcome for id ", o.transaction_id(), " seq ", o.seq(),
                      " which was not confirmed unheld with that seq"));
    return;
  }
  if (++known->second.outcomes > 1) {
    Fail(absl::StrCat("id ", o.transaction_id(), ": a second Outcome"));
  }
  if (o.account_held()) ++holds_seen_;
}

bool HeldSimulation::Settled() const {
  for (const auto& expecting : expecting_) {
    if (!expecting.empty()) return false;
  }
  for (const auto& [id, answer] : answers_) {
    if (answer.status == v1::CONFIRM_STATUS_CONFIRMED && !answer.held && answer.outcomes == 0) {
      return false;
    }
  }
  return true;
}

void HeldSimulation::FinalChecks() {
  const EngineStats stats = engine_->Stats();
  if (stats.held_results_total() != result_.held_answers) {
    Fail(absl::StrCat("held_results ", stats.held_results_total(), " but ", result_.held_answers,
                      " held answers were told"));
  }
  if (stats.outcomes_total() != result_.outcomes) {
    Fail(absl::StrCat("outcomes ", stats.outcomes_total(), " but ", result_.outcomes,
                      " Outcome frames were sent"));
  }
  if (stats.holds_placed != holds_seen_) {
    Fail(absl::StrCat(stats.holds_placed, " holds placed, but only ", holds_seen_,
                      " late fraud failures said so: a held failure held an account"));
  }
  result_.lapped = handler_->counters().outcomes_lapped.load(std::memory_order_relaxed);
  if (handler_->counters().outcomes_lost.load(std::memory_order_relaxed) != 0) {
    Fail("outcomes lost although the history holds them all");
  }
}

HeldSeedResult HeldSimulation::Run() {
  result_.seed = seed_;
  if (!Setup()) return result_;
  const int steps = 200 + static_cast<int>(Uniform(200));
  for (step_ = 1; step_ <= static_cast<uint64_t>(steps) && result_.ok; ++step_) {
    if (Chance(60)) SubmitSome(static_cast<int>(Uniform(kClients)));
    StepStages();
    clock_.AdvanceNs(static_cast<int64_t>(Uniform(400'000)));
    handler_->SetNow(clock_.NowNs());
    if (Chance(40)) Turn();
    ReadAll();
  }
  // Drain: everything submitted gets its answer, every unheld confirmation its outcome.
  for (int round = 0; round < 1000 && result_.ok && !Settled(); ++round) {
    clock_.AdvanceNs(5'000'000);
    handler_->SetNow(clock_.NowNs());
    while (engine_->Step() > 0) {}
    Turn();
    ReadAll();
    ++step_;
  }
  if (result_.ok && !Settled()) Fail("not settled after the drain: an answer or Outcome is missing");
  if (result_.ok) FinalChecks();
  result_.steps = step_;
  (void)engine_->Stop();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
  return result_;
}

}  // namespace

HeldSeedResult RunHeldSeed(uint64_t seed, const std::string& work_dir) {
  return HeldSimulation(seed, work_dir).Run();
}

}  // namespace vouch::simulation
