"""PyTorch side of tests/train/test_checkpoint_cnn_torch.cpp.

The model is the equivalent torch.nn module of examples/fashion_mnist_cnn_model.hpp: two blocks of 3x3 conv (no
bias) -> BatchNorm2d -> ReLU -> 2x2 max-pool, then flatten -> Linear 128 -> ReLU -> Dropout 0.3 -> Linear 10, with
the attribute names conv1, bn1, conv2, bn2, fc1, fc2, so its state_dict names and shapes are those of a kiln
checkpoint. safetensors files are read and written by hand (torch_interop.py's reader and writer: 8-byte
little-endian header length, JSON header, raw little-endian data), so the `safetensors` package is not needed.

  python3 cnn_interop.py CKPT INPUTS STEPS OUT

loads the model tensors of the kiln checkpoint CKPT (its optimizer state and metadata left out) with
load_state_dict(strict=True), checks that the batch-norm running statistics were trained away from their initial
values (num_batches_tracked == STEPS), and writes to OUT the evaluation-mode logits of INPUTS["x"] ([n, 784], viewed
as [n, 1, 28, 28]). Any failed check exits non-zero with a message.
"""
import sys

import torch

from torch_interop import read_safetensors, write_safetensors  # this script's directory is on sys.path

OPTIMIZER_SUFFIXES = (".exp_avg", ".exp_avg_sq", ".momentum_buffer")


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(32)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(64)
        self.fc1 = torch.nn.Linear(64 * 7 * 7, 128)
        self.fc2 = torch.nn.Linear(128, 10)
        self.pool = torch.nn.MaxPool2d(2)
        self.dropout = torch.nn.Dropout(0.3)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(self.dropout(x))


def fail(message):
    sys.exit("cnn_interop.py: " + message)


def main(argv):
    checkpoint, metadata = read_safetensors(argv[1])
    inputs, _ = read_safetensors(argv[2])
    steps, out = int(argv[3]), argv[4]
    model_tensors = {k: v for k, v in checkpoint.items() if not k.endswith(OPTIMIZER_SUFFIXES)}
    if len(model_tensors) == len(checkpoint):
        fail("the checkpoint holds no optimizer state (expected Adam's exp_avg / exp_avg_sq): %s" % sorted(checkpoint))

    net = Net()
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    # The tensors as kiln wrote them: num_batches_tracked is an F32 scalar there; load_state_dict copies it
    # (Tensor.copy_) into the module's int64 buffer, as it would for a user loading the file.
    result = net.load_state_dict(model_tensors, strict=True)  # raises on any missing / unexpected / misshaped key
    if result.missing_keys or result.unexpected_keys:
        fail("strict loading: missing %s, unexpected %s" % (result.missing_keys, result.unexpected_keys))
    if sorted(model_tensors) != sorted(initial):
        fail("names differ: checkpoint %s, torch %s" % (sorted(model_tensors), sorted(initial)))

    state = net.state_dict()
    for name in ("bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"):
        if torch.equal(state[name], initial[name]):
            fail("%s still holds its initial value: the running statistics were not exercised" % name)
        if not torch.equal(state[name], model_tensors[name]):
            fail("%s was not loaded" % name)
    for name in ("bn1.num_batches_tracked", "bn2.num_batches_tracked"):
        if state[name].dtype != torch.int64 or state[name].item() != steps:
            fail("%s is %r (%s), expected %d" % (name, state[name].item(), state[name].dtype, steps))

    net.eval()  # running statistics, no dropout: kiln's forward graph
    with torch.no_grad():
        logits = net(inputs["x"].reshape(-1, 1, 28, 28))
    write_safetensors(out, {"logits": logits})


if __name__ == "__main__":
    main(sys.argv)
