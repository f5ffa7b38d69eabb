// CSV reader: accepted layouts, label column choices, and errors that carry file, line and column.
#include "data_test_util.hpp"

#include <kiln/data/csv.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using kiln::data::csv_header;
using kiln::data::csv_label;
using kiln::data::csv_options;
using kiln::data::read_csv_bytes;
using kiln_test::require_format_error;

namespace {
csv_options with_label(csv_label l, csv_header h = csv_header::automatic) {
  csv_options o;
  o.label = std::move(l);
  o.header = h;
  return o;
}
}  // namespace

TEST_CASE("csv: header detected, label chosen by name, features keep their order") {
  const auto t = read_csv_bytes("a,label,b\n1,0,2.5\n-3,1,4e2\n", "t.csv", with_label(csv_label::named("label")));
  CHECK(t.has_header);
  CHECK(t.rows == 2);
  CHECK(t.cols == 2);
  CHECK(t.feature_names == std::vector<std::string>{"a", "b"});
  CHECK(t.label_name == "label");
  CHECK(t.label_column == 1);
  CHECK(t.features == std::vector<float>{1, 2.5f, -3, 400});
  CHECK(t.labels == std::vector<float>{0, 1});
  CHECK(t.row_lines == std::vector<std::size_t>{2, 3});
}

TEST_CASE("csv: label by index, negative index from the end, or none") {
  const std::string text = "1,2,3\n4,5,6\n";
  auto first = read_csv_bytes(text, "t.csv", with_label(csv_label::column(0)));
  CHECK_FALSE(first.has_header);
  CHECK(first.labels == std::vector<float>{1, 4});
  CHECK(first.features == std::vector<float>{2, 3, 5, 6});
  auto last = read_csv_bytes(text, "t.csv", with_label(csv_label::column(-1)));
  CHECK(last.label_column == 2);
  CHECK(last.labels == std::vector<float>{3, 6});
  CHECK(last.features == std::vector<float>{1, 2, 4, 5});
  auto none = read_csv_bytes(text, "t.csv");
  CHECK_FALSE(none.has_labels);
  CHECK(none.labels.empty());
  CHECK(none.cols == 3);
  CHECK(none.features == std::vector<float>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("csv: blank lines, CRLF, no final newline, spaces, quotes, '+' and a BOM are accepted") {
  const std::string text = "\xEF\xBB\xBF\r\n\"x\", \"y \"\"q\"\"\"\r\n\n  +1 ,\"2\"\r\n\t\r\n3,  -0.5";
  const auto t = read_csv_bytes(text, "t.csv");
  CHECK(t.has_header);
  CHECK(t.feature_names == std::vector<std::string>{"x", "y \"q\""});
  CHECK(t.features == std::vector<float>{1, 2, 3, -0.5f});
  CHECK(t.row_lines == std::vector<std::size_t>{4, 6});
}

TEST_CASE("csv: explicit header modes override detection") {
  // A numeric first row is data under automatic, a header when declared present.
  const std::string text = "10,20\n1,2\n";
  CHECK(read_csv_bytes(text, "t.csv").rows == 2);
  const auto present = read_csv_bytes(text, "t.csv", with_label(csv_label::named("20"), csv_header::present));
  CHECK(present.rows == 1);
  CHECK(present.labels == std::vector<float>{2});
  // Declared absent: a non-numeric first row is then an error on line 1.
  require_format_error(
      [&] { read_csv_bytes("a,b\n1,2\n", "t.csv", with_label(csv_label::none(), csv_header::absent)); },
      {"'t.csv' line 1, column 1: expected a number, found 'a'"});
}

TEST_CASE("csv: a separator other than comma") {
  csv_options o;
  o.separator = ';';
  o.label = csv_label::column(1);
  const auto t = read_csv_bytes("1.5;2\n3;4\n", "t.csv", o);
  CHECK(t.features == std::vector<float>{1.5f, 3});
  CHECK(t.labels == std::vector<float>{2, 4});
}

TEST_CASE("csv: read_csv reads a file and class_labels checks the label column") {
  const auto p = kiln_test::write_temp("classes.csv", "f1,f2,y\n0.1,0.2,1\n0.3,0.4,0\n0.5,0.6,2\n");
  const auto t = kiln::data::read_csv(p, with_label(csv_label::named("y")));
  CHECK(t.source == p);
  CHECK(kiln::data::class_labels(t, 3) == std::vector<std::int32_t>{1, 0, 2});
  require_format_error([&] { kiln::data::class_labels(t, 2); },
                       {"'" + p + "' line 4, column 3 (y): expected a class index in [0, 2), found 2"});
  const auto frac = read_csv_bytes("1,0.5\n", "frac.csv", with_label(csv_label::column(1)));
  require_format_error([&] { kiln::data::class_labels(frac, 2); },
                       {"'frac.csv' line 1, column 2: expected a class index in [0, 2), found 0.5"});
}

TEST_CASE("csv: errors name the file, line and column") {
  SECTION("non-numeric cell, with the header's column name") {
    require_format_error([] { read_csv_bytes("a,b,c\n1,2,3\n\n4,x5,6\n", "d.csv"); },
                         {"'d.csv' line 4, column 2 (b): expected a number, found 'x5'"});
  }
  SECTION("non-numeric label cell names the label column") {
    require_format_error([] { read_csv_bytes("a,y\n1,cat\n", "d.csv", with_label(csv_label::named("y"))); },
                         {"'d.csv' line 2, column 2 (y): expected a number, found 'cat'"});
  }
  SECTION("number followed by junk") {
    require_format_error([] { read_csv_bytes("1,2\n3,4.5.6\n", "d.csv"); },
                         {"'d.csv' line 2, column 2: expected a number, found '4.5.6'"});
  }
  SECTION("empty cell") {
    require_format_error([] { read_csv_bytes("1,2,3\n4,,6\n", "d.csv"); },
                         {"'d.csv' line 2, column 2: expected a number, found an empty cell"});
  }
  SECTION("non-finite values") {
    require_format_error([] { read_csv_bytes("1,nan\n", "d.csv", with_label(csv_label::none(), csv_header::absent)); },
                         {"'d.csv' line 1, column 2: expected a finite number, found 'nan'"});
    require_format_error([] { read_csv_bytes("1,2\n-inf,3\n", "d.csv"); },
                         {"'d.csv' line 2, column 1: expected a finite number, found '-inf'"});
  }
  SECTION("number out of float range") {
    require_format_error([] { read_csv_bytes("1,2\n1e39,3\n", "d.csv"); },
                         {"'d.csv' line 2, column 1: number '1e39' is outside the float range"});
  }
  SECTION("ragged row") {
    require_format_error([] { read_csv_bytes("a,b,c\n1,2,3\n4,5\n", "d.csv"); },
                         {"'d.csv' line 3, column 3: ragged row: 2 columns, expected 3 (as on line 1)"});
    require_format_error([] { read_csv_bytes("1,2\n3,4,5,6\n", "d.csv"); },
                         {"'d.csv' line 2, column 3: ragged row: 4 columns, expected 2 (as on line 1)"});
  }
  SECTION("label column name not in the header") {
    require_format_error([] { read_csv_bytes("a,b\n1,2\n", "d.csv", with_label(csv_label::named("y"))); },
                         {"'d.csv' line 1: no column named 'y' for the label; the header has: a, b"});
  }
  SECTION("label column name given twice in the header") {
    require_format_error([] { read_csv_bytes("y,b,y\n1,2,3\n", "d.csv", with_label(csv_label::named("y"))); },
                         {"'d.csv' line 1: label column name 'y' is ambiguous: columns 1 and 3"});
  }
  SECTION("label column index past the last column") {
    require_format_error([] { read_csv_bytes("1,2\n", "d.csv", with_label(csv_label::column(2))); },
                         {"'d.csv' line 1: label column index 2 requested, but the table has 2 columns"});
    require_format_error([] { read_csv_bytes("1,2\n", "d.csv", with_label(csv_label::column(-3))); },
                         {"label column index -3 requested, but the table has 2 columns"});
  }
  SECTION("label by name without a header") {
    require_format_error([] { read_csv_bytes("\n1,2\n", "d.csv", with_label(csv_label::named("y"))); },
                         {"'d.csv': label column 'y' requested by name, but the file has no header (line 2"});
  }
  SECTION("empty file, or only blank lines") {
    require_format_error([] { read_csv_bytes("", "d.csv"); }, {"'d.csv': empty CSV file"});
    require_format_error([] { read_csv_bytes("\n \r\n\n", "d.csv"); }, {"'d.csv': empty CSV file"});
  }
  SECTION("header without data rows") {
    require_format_error([] { read_csv_bytes("\na,b\n\n", "d.csv"); },
                         {"'d.csv': CSV file has a header on line 2 but no data rows"});
  }
  SECTION("unterminated quote") {
    require_format_error([] { read_csv_bytes("1,\"2\n3,4\n", "d.csv"); },
                         {"'d.csv' line 1, column 2: quoted cell has no closing '\"' before the end of the line"});
  }
  SECTION("text after a closing quote") {
    require_format_error(
        [] { read_csv_bytes("\"1\"x,2\n", "d.csv"); },
        {"'d.csv' line 1, column 1: expected ',' or the end of the line after a quoted cell, found 'x'"});
  }
  SECTION("doubled signs") {
    require_format_error([] { read_csv_bytes("1,2\n+-1,2\n", "d.csv"); },
                         {"'d.csv' line 2, column 1: expected a number, found '+-1'"});
  }
  SECTION("a missing file is an io_error") {
    REQUIRE_THROWS_AS(kiln::data::read_csv(kiln_test::temp_dir() + "/none.csv"), kiln::io_error);
  }
}
