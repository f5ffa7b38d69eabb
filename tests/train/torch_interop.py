"""PyTorch side of tests/train/test_checkpoint_torch.cpp.

The model is the equivalent torch.nn module of kiln's nn::sequential(dense<H1>, relu, dense<H2>, relu,
dense<C>): three nn.Linear layers named fc1, fc2, fc3, so state_dict names and shapes are kiln's.
safetensors files are read and written by hand (8-byte little-endian header length, JSON header, raw
little-endian data), so the `safetensors` package is not needed.

  python3 torch_interop.py CKPT INPUTS LR SEED DIR   (one run: importing torch takes seconds)
writes into DIR
  predicted.safetensors     logits of INPUTS["x"] with the parameters of the kiln checkpoint CKPT
  continued.safetensors     parameters and Adam state after one more torch.optim.Adam step (lr LR) from CKPT's
                            parameters *and* optimizer state (exp_avg, exp_avg_sq, kiln.step_count)
  state_dict.safetensors    a torch model initialized with torch.manual_seed(SEED): its state_dict
  state_dict_logits.safetensors   that model's logits of INPUTS["x"]
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, d in header.items():
        begin, end = d["data_offsets"]
        dtype = DTYPES[d["dtype"]]
        if end > begin:
            t = torch.frombuffer(bytearray(data[base + begin : base + end]), dtype=dtype)
        else:
            t = torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(d["shape"]).clone()
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


class Net(torch.nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.fc1 = torch.nn.Linear(sizes[0], sizes[1])
        self.fc2 = torch.nn.Linear(sizes[1], sizes[2])
        self.fc3 = torch.nn.Linear(sizes[2], sizes[3])

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def model_from(checkpoint):
    params = {k: v for k, v in checkpoint.items() if k.count(".") == 1}  # fcN.weight / fcN.bias only
    sizes = [params["fc1.weight"].shape[1], params["fc1.weight"].shape[0], params["fc2.weight"].shape[0],
             params["fc3.weight"].shape[0]]
    net = Net(sizes)
    net.load_state_dict(params, strict=True)  # names and shapes must match exactly
    return net


def predict(checkpoint, inputs, out):
    with torch.no_grad():
        logits = model_from(checkpoint)(inputs["x"])
    write_safetensors(out, {"logits": logits})


def continue_adam(checkpoint, metadata, inputs, lr, out):
    net = model_from(checkpoint)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    step = float(metadata["kiln.step_count"])
    for name, p in net.named_parameters():
        opt.state[p] = {"step": torch.tensor(step), "exp_avg": checkpoint[name + ".exp_avg"].clone(),
                        "exp_avg_sq": checkpoint[name + ".exp_avg_sq"].clone()}
    loss = torch.nn.functional.cross_entropy(net(inputs["x"]), inputs["y"].long())
    opt.zero_grad()
    loss.backward()
    opt.step()
    result = {name: p for name, p in net.named_parameters()}
    for name, p in net.named_parameters():
        result[name + ".exp_avg"] = opt.state[p]["exp_avg"]
        result[name + ".exp_avg_sq"] = opt.state[p]["exp_avg_sq"]
    write_safetensors(out, result, {"loss": repr(loss.item())})


def export(seed, inputs, out_state_dict, out_logits):
    torch.manual_seed(seed)
    net = Net([inputs["x"].shape[1], 16, 8, 3])
    write_safetensors(out_state_dict, net.state_dict())
    with torch.no_grad():
        write_safetensors(out_logits, {"logits": net(inputs["x"])})


def main(argv):
    checkpoint, metadata = read_safetensors(argv[1])
    inputs, _ = read_safetensors(argv[2])
    lr, seed, out = float(argv[3]), int(argv[4]), argv[5]
    predict(checkpoint, inputs, out + "/predicted.safetensors")
    continue_adam(checkpoint, metadata, inputs, lr, out + "/continued.safetensors")
    export(seed, inputs, out + "/state_dict.safetensors", out + "/state_dict_logits.safetensors")


if __name__ == "__main__":
    main(sys.argv)
