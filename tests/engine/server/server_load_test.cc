// Server under load and across the edges of a session's life, over real loopback sockets.
//
// Method: every test tracks, per transaction id, what the client was told (confirmation status,
// outcome count) and checks the contract's central promise at the end: each CONFIRMED
// transaction got exactly one Outcome, on the session that submitted it, and the engine agrees
// (outcomes == confirmed). Timing is never asserted.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engine/testing/engine_test_peer.h"
#include "tests/engine/server/server_fixture.h"

namespace vouch::server::testing {
namespace {

Options LoadBank() {
  Options engine = vouch::testing::BankOptions(1000);
  engine.in_flight_capacity = 1 << 15;
  engine.idempotency_window = 1 << 18;
  engine.history_capacity = 1 << 18;
  engine.fraud_rules.velocity_enabled = false;  // Many small payments per account, by design.
  return engine;
}

// What one connection saw.
struct Ledger {
  uint64_t confirmed = 0;
  uint64_t busy = 0;
  uint64_t outcomes = 0;
  uint64_t duplicate_outcomes = 0;
  uint64_t unexpected_outcomes = 0;
  Sequence last_outcome_seq = 0;
  bool out_of_order = false;
  absl::flat_hash_map<uint64_t, int> outcomes_by_id;  // Confirmed id -> outcomes seen.

  void OnMessage(const v1::ServerMessage& message) {
    if (message.has_confirmation()) {
      const v1::Confirmation& c = message.confirmation();
      if (c.status() == v1::CONFIRM_STATUS_CONFIRMED) {
        ++confirmed;
        outcomes_by_id.try_emplace(c.transaction_id(), 0);
      } else if (c.status() == v1::CONFIRM_STATUS_BUSY) {
        ++busy;
      }
    } else if (message.has_outcome()) {
      const v1::Outcome& o = message.outcome();
      if (o.seq() <= last_outcome_seq) out_of_order = true;
      last_outcome_seq = o.seq();
      ++outcomes;
      auto it = outcomes_by_id.find(o.transaction_id());
      if (it == outcomes_by_id.end()) {
        ++unexpected_outcomes;
      } else if (++it->second > 1) {
        ++duplicate_outcomes;
      }
    }
  }
  uint64_t missing() const {
    uint64_t n = 0;
    for (const auto& [id, count] : outcomes_by_id) n += count == 0;
    return n;
  }
};

TEST_F(ServerTest, HundredThousandPipelinedOverFourConnectionsEachConfirmedGetsOneOutcome) {
  ServerOptions options;
  options.io_threads = 2;  // Sessions land on either thread: hand-offs and cross-thread routing.
  StartServer(options, LoadBank());
  constexpr int kConnections = 4;
  constexpr uint64_t kPerConnection = 25'000;
  constexpr int kBatch = 50;
  std::vector<Ledger> ledgers(kConnections);
  std::vector<std::thread> threads;
  for (int c = 0; c < kConnections; ++c) {
    threads.emplace_back([this, c, &ledgers] {
      TestClient client(port());
      ASSERT_TRUE(client.Hello(absl::StrCat("pipeline-", c)));
      Ledger& ledger = ledgers[c];
      std::atomic<bool> sent_all{false};
      std::thread reader([&] {
        v1::ServerMessage message;
        // Until every confirmation is in and every confirmed one has its outcome.
        for (uint64_t answered = 0;;) {
          if (sent_all.load() && answered == kPerConnection && ledger.missing() == 0) break;
          if (!client.Read(&message, 10'000)) break;
          if (message.has_confirmation()) ++answered;
          ledger.OnMessage(message);
        }
      });
      const uint64_t first_id = 1 + c * kPerConnection;
      for (uint64_t i = 0; i < kPerConnection; i += kBatch) {
        v1::ClientMessage submit;
        for (uint64_t k = i; k < i + kBatch; ++k) {
          const uint64_t id = first_id + k;
          *submit.mutable_submit()->add_transactions() =
              WireTransfer(id, id % 997 + 1, (id + 1) % 997 + 1, 1 + id % 50);
        }
        ASSERT_TRUE(client.Send(submit));
      }
      sent_all.store(true);
      reader.join();
    });
  }
  for (auto& thread : threads) thread.join();
  uint64_t confirmed = 0;
  uint64_t busy = 0;
  for (int c = 0; c < kConnections; ++c) {
    const Ledger& ledger = ledgers[c];
    EXPECT_EQ(ledger.confirmed + ledger.busy, kPerConnection) << "connection " << c;
    EXPECT_EQ(ledger.missing(), 0u) << "connection " << c;
    EXPECT_EQ(ledger.duplicate_outcomes, 0u) << "connection " << c;
    EXPECT_EQ(ledger.unexpected_outcomes, 0u) << "another session's outcome, connection " << c;
    EXPECT_FALSE(ledger.out_of_order) << "connection " << c;
    confirmed += ledger.confirmed;
    busy += ledger.busy;
  }
  // How many are refused BUSY depends on how fast this machine verifies (no timing is asserted
  // here); every refusal is counted alike by client and server.
  EXPECT_GT(confirmed, 0u);
  EXPECT_EQ(server_->engine().Stats().busy_total(), busy);
  const ShutdownReport report = Shutdown();
  EXPECT_TRUE(report.engine.drained);
  EXPECT_EQ(report.outcomes, confirmed);
  EXPECT_EQ(server_->engine().Stats().confirmed, confirmed);
  EXPECT_EQ(EngineTestPeer::Ledger(server_->engine()).ClearingMinor(vouch::testing::kUsd), 0);
}

TEST_F(ServerTest, ReconnectingSessionIsSentTheOutcomesItMissedExactlyOnce) {
  StartServer({}, LoadBank());
  Ledger ledger;
  v1::ServerMessage message;
  {
    TestClient first(port());
    ASSERT_TRUE(first.Hello("resumer"));
    v1::ClientMessage submit;
    for (uint64_t id = 1; id <= 10; ++id) {
      *submit.mutable_submit()->add_transactions() = WireTransfer(id, id, id + 1, 10);
    }
    ASSERT_TRUE(first.Send(submit));
    while (ledger.outcomes < 10 && first.Read(&message)) ledger.OnMessage(message);
    ASSERT_EQ(ledger.outcomes, 10u);
    // The verifier stalls; the next batch is confirmed, then the connection drops before any of
    // its outcomes can be decided.
    EngineTestPeer::StallVerifier(server_->engine(), VerifierId::kFraud, 200'000'000);
    submit.Clear();
    for (uint64_t id = 11; id <= 30; ++id) {
      *submit.mutable_submit()->add_transactions() = WireTransfer(id, id, id + 1, 10);
    }
    ASSERT_TRUE(first.Send(submit));
    while (ledger.confirmed < 30 && first.Read(&message)) ledger.OnMessage(message);
    ASSERT_EQ(ledger.confirmed, 30u);
  }
  // Outcomes are decided while no connection holds the session.
  for (int i = 0; i < 200 && server_->engine().Stats().outcomes_total() < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(server_->engine().Stats().outcomes_total(), 30u);
  TestClient second(port());
  ASSERT_TRUE(second.Hello("resumer", ledger.last_outcome_seq));
  while (ledger.outcomes < 30 && second.Read(&message)) ledger.OnMessage(message);
  EXPECT_EQ(ledger.outcomes, 30u);
  EXPECT_EQ(ledger.missing(), 0u);
  EXPECT_EQ(ledger.duplicate_outcomes, 0u);
  EXPECT_FALSE(ledger.out_of_order);
  EXPECT_FALSE(second.Read(&message, 200)) << "nothing more";
  // Still live after the resend: a new transaction's outcome arrives on the new connection.
  v1::ClientMessage submit;
  *submit.mutable_submit()->add_transactions() = WireTransfer(31, 5, 6, 10);
  ASSERT_TRUE(second.Send(submit));
  while (ledger.outcomes < 31 && second.Read(&message)) ledger.OnMessage(message);
  EXPECT_EQ(ledger.outcomes, 31u);
  EXPECT_EQ(server_->Stats().outcomes_resent, 20u);
  EXPECT_EQ(server_->Stats().resumes, 1u);
}

TEST_F(ServerTest, ResumeFromBeforeTheRetainedWindowIsRefusedClearly) {
  ServerOptions options;
  options.retained_outcomes = 1024;
  StartServer(options, LoadBank());
  TestClient client(port());
  ASSERT_TRUE(client.Hello("forgetful"));
  Ledger ledger;
  v1::ServerMessage message;
  for (uint64_t base = 0; base < 3000; base += 500) {
    v1::ClientMessage submit;
    for (uint64_t id = base + 1; id <= base + 500; ++id) {
      *submit.mutable_submit()->add_transactions() = WireTransfer(id, id % 997 + 1, id % 997 + 2, 1);
    }
    ASSERT_TRUE(client.Send(submit));
  }
  while (ledger.outcomes < 3000 && client.Read(&message)) ledger.OnMessage(message);
  ASSERT_EQ(ledger.outcomes, 3000u);
  TestClient late(port());
  ASSERT_TRUE(late.Hello("forgetful", 10));
  EXPECT_EQ(late.ReadError(), v1::ERROR_CODE_RESUME_WINDOW_EXCEEDED);
  EXPECT_EQ(server_->Stats().errors[v1::ERROR_CODE_RESUME_WINDOW_EXCEEDED], 1u);
}

TEST_F(ServerTest, ShutdownWithTransactionsInFlightDeliversEveryOutcomeThenSaysSo) {
  Options engine = LoadBank();
  engine.verification_deadline_ns = 300'000'000;
  StartServer({}, engine);
  TestClient client(port());
  ASSERT_TRUE(client.Hello("in-flight"));
  Ledger ledger;
  EngineTestPeer::StallVerifier(server_->engine(), VerifierId::kLedger, 150'000'000);
  for (uint64_t base = 0; base < 1000; base += 500) {  // Two Submits: the batch maximum is 512.
    v1::ClientMessage submit;
    for (uint64_t id = base + 1; id <= base + 500; ++id) {
      *submit.mutable_submit()->add_transactions() =
          WireTransfer(id, id % 997 + 1, id % 997 + 2, 1);
    }
    ASSERT_TRUE(client.Send(submit));
  }
  v1::ServerMessage message;
  while (ledger.confirmed < 1000 && client.Read(&message)) ledger.OnMessage(message);
  ASSERT_EQ(ledger.confirmed, 1000u);
  ASSERT_LT(ledger.outcomes, 1000u) << "the ledger stall keeps them in flight";

  std::thread shutdown([this] { Shutdown(); });
  // While the engine drains, a new Submit is answered BUSY / SHUTTING_DOWN: nothing new is
  // confirmed. Keep trying until the answer comes or the connection is told goodbye.
  bool refused_for_shutdown = false;
  v1::ErrorCode goodbye = v1::ERROR_CODE_UNSPECIFIED;
  for (uint64_t id = 5000; goodbye == v1::ERROR_CODE_UNSPECIFIED; ++id) {
    if (!refused_for_shutdown) {
      v1::ClientMessage late;
      *late.mutable_submit()->add_transactions() = WireTransfer(id, 1, 2, 1);
      client.Send(late);
    }
    while (client.Read(&message, refused_for_shutdown ? 5'000 : 5)) {
      if (message.has_error()) {
        goodbye = message.error().code();
        break;
      }
      if (message.has_confirmation()) {
        const v1::Confirmation& c = message.confirmation();
        if (c.status() == v1::CONFIRM_STATUS_BUSY && c.reason() == v1::REASON_SHUTTING_DOWN) {
          refused_for_shutdown = true;
          continue;
        }
      }
      ledger.OnMessage(message);
    }
    if (!refused_for_shutdown && id > 100'000) break;
  }
  shutdown.join();
  EXPECT_TRUE(refused_for_shutdown);
  EXPECT_EQ(goodbye, v1::ERROR_CODE_SHUTTING_DOWN);
  EXPECT_EQ(ledger.missing(), 0u) << "every confirmed transaction's outcome came before goodbye";
  EXPECT_EQ(ledger.duplicate_outcomes, 0u);
  ASSERT_TRUE(report_.has_value());
  EXPECT_TRUE(report_->engine.drained);
  EXPECT_EQ(report_->outcomes, ledger.confirmed);
  EXPECT_EQ(report_->bytes_unflushed, 0u);
}

TEST_F(ServerTest, SessionResumesAcrossARestartFromTheJournal) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/resume-restart";
  std::filesystem::remove_all(dir);
  Options engine = LoadBank();
  engine.durability.ack = AckPolicy::kDurable;
  engine.durability.dir = dir;
  StartServer({}, engine);
  Ledger ledger;
  v1::ServerMessage message;
  {
    TestClient client(port());
    ASSERT_TRUE(client.Hello("survivor"));
    v1::ClientMessage submit;
    for (uint64_t id = 1; id <= 40; ++id) {
      *submit.mutable_submit()->add_transactions() = WireTransfer(id, id, id + 1, 10);
    }
    ASSERT_TRUE(client.Send(submit));
    // Read the confirmations and only the first outcome; the rest are "lost" with the process.
    while ((ledger.confirmed < 40 || ledger.outcomes < 1) && client.Read(&message)) {
      if (message.has_outcome() && ledger.outcomes == 1) continue;
      ledger.OnMessage(message);
    }
    ASSERT_EQ(ledger.confirmed, 40u);
  }
  ASSERT_TRUE(Shutdown().engine.drained);
  server_.reset();
  report_.reset();
  StartServer({}, engine);  // The same data directory: recovery, then the window is seeded.
  EXPECT_EQ(server_->engine().recovery().outcomes, 40u);
  TestClient again(port());
  ASSERT_TRUE(again.Hello("survivor", ledger.last_outcome_seq));
  while (ledger.outcomes < 40 && again.Read(&message)) ledger.OnMessage(message);
  EXPECT_EQ(ledger.outcomes, 40u);
  EXPECT_EQ(ledger.missing(), 0u);
  EXPECT_EQ(ledger.duplicate_outcomes, 0u);
  EXPECT_FALSE(ledger.out_of_order);
}

}  // namespace
}  // namespace vouch::server::testing
