// plumb diff on other engines' dumps: the .npy/.npz/safetensors readers (hostile input is an
// error, never a crash), tap maps and layouts, tools/plumb_taps.h, and docs/TRACE.md's worked
// example (tests/tools/foreign_engine.py: ref64.py standing in for a foreign engine, writing
// through tools/plumb_taps.py, clean and with a planted bug, diffed against plumb's trace).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "../tools/plumb_taps.h"
#include "test_models.h"
#include "test_util.h"
#include "trace/diff.h"
#include "trace/dump_reader.h"
#include "trace/tap_map.h"

namespace plumb::trace {
namespace {

using test::run_command;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A .npy of one header dict and raw data bytes.
std::string npy(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(DumpReader, HeaderWriterRoundTrips) {
  const std::string dir = test::temp_dir("dump-header");
  const std::vector<float> q = {1, 2, 3, 4, 5, 6};
  const int64_t shape[2] = {2, 3};
  ASSERT_EQ(plumb_taps_f32(dir.c_str(), "layers.0.q", q.data(), 2, shape), 0);
  const std::vector<int32_t> ids = {1, 450, 7};
  ASSERT_EQ(plumb_taps_tokens(dir.c_str(), ids.data(), 3), 0);
  auto arrays = read_dump(dir);
  ASSERT_TRUE(arrays.ok()) << arrays.status().message();
  ASSERT_EQ(arrays->size(), 2u);
  const DumpArray& a = (*arrays)[0];  // sorted by file name
  EXPECT_EQ(a.name, "layers.0.q");
  EXPECT_EQ(a.shape_string(), "[2, 3]");
  EXPECT_EQ(a.values, (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_FALSE(a.is_integer);
  EXPECT_EQ((*arrays)[1].name, "tokens");
  EXPECT_TRUE((*arrays)[1].is_integer);
  EXPECT_EQ((*arrays)[1].values, (std::vector<double>{1, 450, 7}));
  EXPECT_EQ(read_file(dir + "/tokens.npy").size() % 64, 12u);  // 64-byte header + 3 ids
}

TEST(DumpReader, DtypesAndFortranOrder) {
  // Fortran order: element (i, j) of a 2 x 3 array at i + 2 j.
  auto f = parse_npy(npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
                         bytes_of(std::vector<double>{1, 4, 2, 5, 3, 6})), "f.npy");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->values, (std::vector<double>{1, 2, 3, 4, 5, 6}));
  auto half = parse_npy(npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }",
                            bytes_of(std::vector<uint16_t>{0x3c00, 0xc000})), "h.npy");
  ASSERT_TRUE(half.ok()) << half.status().message();
  EXPECT_EQ(half->values, (std::vector<double>{1.0, -2.0}));
  auto big = parse_npy(npy("{'descr': '>i2', 'fortran_order': False, 'shape': (1,), }", std::string("\xff\xfe", 2)), "b.npy");
  ASSERT_TRUE(big.ok()) << big.status().message();
  EXPECT_EQ(big->values, (std::vector<double>{-2}));
}

TEST(DumpReader, HostileFilesAreErrors) {
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  struct Bad {
    std::string bytes, expect;
  };
  const Bad bad[] = {
      {"not numpy at all", "magic"},
      {npy(ok_dict, std::string(20, '\0')), "needs 24 bytes, the file holds 20"},
      {npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0')), "unsupported"},
      {npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", ""), "too large"},
      {npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", ""), "not a tuple"},
      {npy("{'fortran_order': False, 'shape': (2,), }", ""), "'descr'"},
      {std::string("\x93NUMPY\x01\x00\xff\x7f{", 11), "runs past"},
  };
  for (const auto& b : bad) {
    auto r = parse_npy(b.bytes, "x.npy");
    ASSERT_FALSE(r.ok()) << b.expect;
    EXPECT_NE(r.status().message().find(b.expect), std::string::npos) << r.status().message();
  }
  const std::string dir = test::temp_dir("dump-hostile");
  // safetensors: offsets past the data, a header longer than the file, not JSON.
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})";
  std::string st = std::string(8, '\0') + header + std::string(8, '\0');
  st[0] = static_cast<char>(header.size());
  write_file(dir + "/a.safetensors", st);
  auto r = read_dump(dir + "/a.safetensors");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("outside the 8 data bytes"), std::string::npos) << r.status().message();
  write_file(dir + "/b.safetensors", std::string("\xff\xff\xff\x00\x00\x00\x00\x00{}", 10));
  r = read_dump(dir + "/b.safetensors");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exceeds the file"), std::string::npos) << r.status().message();
  write_file(dir + "/c.safetensors", std::string("\x02\x00\x00\x00\x00\x00\x00\x00{]", 10));
  EXPECT_FALSE(read_dump(dir + "/c.safetensors").ok());
  // npz: no end-of-directory record; a truncated archive.
  write_file(dir + "/d.npz", "PK\x03\x04 not really a zip");
  r = read_dump(dir + "/d.npz");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("zip archive"), std::string::npos) << r.status().message();
  std::string eocd(22, '\0');
  eocd[0] = 'P', eocd[1] = 'K', eocd[2] = 5, eocd[3] = 6, eocd[10] = 1, eocd[12] = 46, eocd[16] = 100;
  write_file(dir + "/e.npz", eocd);
  r = read_dump(dir + "/e.npz");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("past the end"), std::string::npos) << r.status().message();
}

TEST(TapMap, RulesLayersAndErrors) {
  auto m = parse_tap_map(
      "# comment\n"
      "layout: width,tokens\n"
      "layers.{i}.attention.wq -> blk.{i}.q\n"
      "layers.{i}.attn.* -> blk.{i}.attn_out heads,tokens,dim\n"
      "output -> logits\n",
      "m.map");
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto q = m->map("layers.12.attention.wq");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->first, "p0.trace.blk.12.q");
  EXPECT_EQ(q->second, "width,tokens");
  auto a = m->map("layers.3.attn.heads");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->first, "p0.trace.blk.3.attn_out");
  EXPECT_EQ(a->second, "heads,tokens,dim");
  EXPECT_EQ(m->map("output")->first, "p0.trace.logits");
  EXPECT_EQ(m->map("tokens")->first, "p0.tokens");       // plumb's own names pass through
  EXPECT_EQ(m->map("blk.4.ffn_up")->first, "p0.trace.blk.4.ffn_up");
  EXPECT_FALSE(m->map("layers.x.attention.wq").has_value());
  EXPECT_FALSE(m->map("something.else").has_value());
  for (const char* bad : {"no arrow here\n", "a -> b c d\n", "a.{i} -> blk.0.q\n", "a -> b sideways\n",
                          "layout: diagonal\n", "precision: perfect\n"}) {
    auto r = parse_tap_map(bad, "bad.map");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("bad.map:1"), std::string::npos) << r.status().message();
  }
}

TEST(TapMap, LayoutsFitTheReferenceOrNameBothShapes) {
  // Reference: blk.0.q of width 6 (3 heads of 2) over 2 tokens, values 0..11 row-major.
  TraceFile ref;
  ref.path = "ref.gguf";
  TraceTensor t;
  t.name = *parse_tensor_name("p0.trace.blk.0.q");
  t.width = 6;
  t.n_tokens = 2;
  t.shape = "[6, 2]";
  for (int i = 0; i < 12; ++i) t.data.push_back(static_cast<float>(i));
  ref.tensors.push_back(t);
  auto one = [&](std::vector<int64_t> dims, std::vector<double> values, const std::string& layout) {
    DumpArray a;
    a.name = "blk.0.q";
    a.dims = std::move(dims);
    a.values = std::move(values);
    TapMap map;
    map.layout = layout;
    return dump_to_trace("dump", {a}, map, ref);
  };
  std::vector<double> transposed, per_head;
  for (int w = 0; w < 6; ++w) {
    for (int tok = 0; tok < 2; ++tok) transposed.push_back(tok * 6 + w);
  }
  for (int h = 0; h < 3; ++h) {  // 3 heads of 2
    for (int tok = 0; tok < 2; ++tok) {
      for (int d = 0; d < 2; ++d) per_head.push_back(tok * 6 + h * 2 + d);
    }
  }
  for (const auto& [dims, values] : std::vector<std::pair<std::vector<int64_t>, std::vector<double>>>{
           {{1, 2, 6}, std::vector<double>(t.data.begin(), t.data.end())},
           {{6, 2}, transposed},
           {{3, 2, 2}, per_head}}) {
    auto r = one(dims, values, "auto");
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->tensors[0].data, t.data);
  }
  auto r = one({3, 4}, std::vector<double>(12, 0.0), "auto");
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.status().message();
  for (const char* part : {"[3, 4]", "[6, 2]", "tokens,width [2, 6]", "width,tokens [6, 2]", "heads,tokens,dim"}) {
    EXPECT_NE(msg.find(part), std::string::npos) << part << " in: " << msg;
  }
}

// docs/TRACE.md's worked example, end to end through the command line.
TEST(WorkedExample, ForeignDumpsDiffCleanlyAndThePlantedBugIsNamed) {
  PLUMB_REQUIRE_AUSTEN(model, "f16");
  const std::string ref64 = test::shared_path("tools/ref64.py");
  std::string out;
  if (ref64.empty() || run_command("python3 -c 'import numpy, gguf'", &out) != 0) {
    GTEST_SKIP() << "python3 with numpy and gguf and ../shared/tools/ref64.py are needed";
  }
  const std::string dir = test::temp_dir("worked-example");
  const std::string tokens = "1,739,338,263,8760,4946,635,24084,3192,29892,393,263,2323,767";
  ASSERT_EQ(test::run_plumb("trace -m '" + model + "' --tokens " + tokens + " -o " + dir + "/plumb.gguf", &out), 0) << out;
  const std::string engine = "python3 '" + std::string(PLUMB_SOURCE_DIR) + "/tests/tools/foreign_engine.py' '" +
                             test::shared_dir() + "' '" + model + "' " + tokens + " ";
  ASSERT_EQ(run_command(engine + dir + "/clean " + dir + "/clean.npz " + dir + "/clean.stored.npz " + dir +
                          "/clean.safetensors",
                      &out),
            0)
      << out;
  ASSERT_EQ(run_command(engine + dir + "/bug " + dir + "/bug.npz " + dir + "/bug.safetensors --bug rope-offset", &out), 0)
      << out;
  const std::string map = " --map '" + std::string(PLUMB_SOURCE_DIR) + "/tests/tools/foreign_engine.map'";
  for (const char* dump : {"clean", "clean.npz", "clean.stored.npz", "clean.safetensors"}) {
    EXPECT_EQ(test::run_plumb("diff " + dir + "/" + dump + " " + dir + "/plumb.gguf" + map, &out), 0) << dump << "\n" << out;
    EXPECT_NE(out.find("all 123 taps within thresholds"), std::string::npos) << dump << "\n" << out;
  }
  for (const char* dump : {"bug", "bug.npz", "bug.safetensors"}) {
    EXPECT_EQ(test::run_plumb("diff " + dir + "/" + dump + " " + dir + "/plumb.gguf" + map, &out), 1) << dump << "\n" << out;
    EXPECT_NE(out.find("diverges first at blk.0.q_rope"), std::string::npos) << dump << "\n" << out;
  }
  // Without the map nothing is recognised; a wrong layout names both shapes and what it tried.
  EXPECT_EQ(test::run_plumb("diff " + dir + "/clean " + dir + "/plumb.gguf", &out), 1) << out;
  EXPECT_NE(out.find("give a tap map (--map)"), std::string::npos) << out;
  EXPECT_EQ(test::run_plumb("diff " + dir + "/clean.npz " + dir + "/plumb.gguf" + map + " --layout width,tokens", &out), 1)
      << out;
  EXPECT_NE(out.find("has shape [14, 256]; the reference"), std::string::npos) << out;
  EXPECT_NE(out.find("Layouts tried: width,tokens [256, 14]"), std::string::npos) << out;
}

}  // namespace
}  // namespace plumb::trace
