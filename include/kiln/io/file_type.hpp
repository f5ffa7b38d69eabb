#pragma once
// Recognizes the common file types that get passed to the wrong reader, by their leading magic bytes, so the
// message can say "this is a PyTorch zip archive" instead of reporting a nonsensical header length.
#include <string>
#include <string_view>

namespace kiln::io {

struct file_kind {
  std::string_view what;     // "a zip archive (PyTorch .pt/.pth, NumPy .npz)"; empty when not recognized
  std::string_view convert;  // how to turn it into something kiln reads; may be empty
};

// The kind of file `head` (its first bytes) starts, or {} when none of the known magics match.
inline file_kind sniff_file_type(std::string_view head) {
  auto starts = [&](std::string_view magic) { return head.substr(0, magic.size()) == magic; };
  using namespace std::string_view_literals;
  // torch.save has written zip archives since PyTorch 1.6; older files are a bare pickle stream (0x80, protocol).
  if (starts("PK\x03\x04"sv) || starts("PK\x05\x06"sv))
    return {"a zip archive (PyTorch .pt/.pth checkpoints saved by torch.save are zip archives)",
            "convert it in Python: from safetensors.torch import save_file; "
            "save_file(torch.load('in.pt'), 'out.safetensors')"};
  if (head.size() >= 2 && head[0] == '\x80' && head[1] >= '\x02' && head[1] <= '\x05')
    return {"a Python pickle (an old-style PyTorch checkpoint)",
            "convert it in Python: from safetensors.torch import save_file; "
            "save_file(torch.load('in.pt'), 'out.safetensors')"};
  if (starts("\x1f\x8b"sv)) return {"a gzip-compressed file", "decompress it first (gunzip)"};
  if (starts("\x89HDF\r\n\x1a\n"sv)) return {"an HDF5 file (Keras .h5)", ""};
  if (starts("\x93NUMPY"sv)) return {"a NumPy .npy array", ""};
  return {};
}

// "'file': this is <what>, not <expected>" plus the conversion hint; empty when the type is not recognized.
inline std::string wrong_type_message(std::string_view head, const std::string& where, std::string_view expected) {
  const file_kind k = sniff_file_type(head);
  if (k.what.empty()) return {};
  std::string msg = where + ": this is " + std::string(k.what) + ", not " + std::string(expected);
  if (!k.convert.empty()) msg += "; " + std::string(k.convert);
  return msg;
}

}  // namespace kiln::io
