#include "engine/journal/crc32c.h"

#include <cstdint>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace vouch::journal::crc32c {
namespace {

uint32_t ValueOf(const std::string& bytes) { return Value(bytes.data(), bytes.size()); }

TEST(Crc32cTest, CheckValue) {
  EXPECT_EQ(ValueOf("123456789"), 0xe3069283u);
  EXPECT_EQ(ValueOf(""), 0u);
}

// RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32cTest, Rfc3720Vectors) {
  EXPECT_EQ(ValueOf(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(ValueOf(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending(32, 0), descending(32, 0);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(ValueOf(ascending), 0x46dd794eu);
  EXPECT_EQ(ValueOf(descending), 0x113fdb5cu);
  const unsigned char read_pdu[48] = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
      0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(Value(reinterpret_cast<const char*>(read_pdu), sizeof(read_pdu)), 0xd9963a56u);
}

TEST(Crc32cTest, PortableMatchesDispatchedAtEveryAlignmentAndLength) {
  std::mt19937_64 rng(7);
  std::string data(1100, 0);
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t start = 0; start < 16; ++start) {
    for (size_t size : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000}) {
      EXPECT_EQ(Extend(0, data.data() + start, size), ExtendPortable(0, data.data() + start, size))
          << "start " << start << " size " << size;
    }
  }
}

TEST(Crc32cTest, ExtendComposes) {
  const std::string a = "hello, ", b = "journal";
  EXPECT_EQ(Extend(ValueOf(a), b.data(), b.size()), ValueOf(a + b));
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  for (uint32_t crc : {0u, 1u, 0xe3069283u, 0xffffffffu}) {
    EXPECT_NE(Mask(crc), crc);
    EXPECT_NE(Mask(Mask(crc)), crc);
    EXPECT_EQ(Unmask(Mask(crc)), crc);
  }
}

TEST(Crc32cTest, ReportsTheImplementation) {
  // Every CPU that passes -march=x86-64-v2 has SSE4.2, so the fast path is what runs here.
  EXPECT_TRUE(HardwareAccelerated());
}

}  // namespace
}  // namespace vouch::journal::crc32c
