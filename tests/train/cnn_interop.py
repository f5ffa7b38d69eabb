"""PyTorch side of tests/train/test_checkpoint_cnn_torch.cpp.

The model is the equivalent torch.nn module of examples/fashion_mnist_cnn_model.hpp: two blocks of 3x3 conv (no
bias) -> BatchNorm2d -> ReLU -> 2x2 max-pool, then flatten -> Linear 128 -> ReLU -> Dropout 0.3 -> Linear 10, with
the attribute names conv1, bn1, conv2, bn2, fc1, fc2, so its state_dict names and shapes are those of a kiln
checkpoint. MODEL "sequential" selects instead the torch.nn.Sequential of the test's kiln::nn::torch_sequential CNN
(16x16 images; names by position: 0.weight, 1.running_mean, 4.weight, 8.bias, ...). safetensors files are read and
written by hand (torch_interop.py's reader and writer: 8-byte little-endian header length, JSON header, raw
little-endian data), so the `safetensors` package is not needed.

  python3 cnn_interop.py CKPT INPUTS STEPS OUT [MODEL]    (MODEL: fashion, the default, or sequential)
  python3 cnn_interop.py --train-in-torch TRAIN INPUTS STEPS STATE OUT

loads the model tensors of the kiln checkpoint CKPT (its optimizer state and metadata left out) with
load_state_dict(strict=True), checks that the batch-norm running statistics were trained away from their initial
values (num_batches_tracked == STEPS), and writes to OUT the evaluation-mode logits of INPUTS["x"] ([n, 784], viewed
as [n, 1, 28, 28]; sequential: [n, 256] as [n, 1, 16, 16]). Any failed check exits non-zero with a message.
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


def sequential():
    """The model, its batch norms' prefixes and its image side: the torch.nn.Sequential CNN of the second test."""
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False), nn.ReLU(), nn.AvgPool2d(2),
                        nn.Flatten(), nn.Linear(6 * 2 * 2, 10), nn.ReLU(), nn.Dropout(0.2), nn.Linear(10, 3))
    return net, ("1",), 16


MODELS = {"fashion": lambda: (Net(), ("bn1", "bn2"), 28), "sequential": sequential}


def fail(message):
    sys.exit("cnn_interop.py: " + message)


def main(argv):
    checkpoint, metadata = read_safetensors(argv[1])
    inputs, _ = read_safetensors(argv[2])
    steps, out = int(argv[3]), argv[4]
    net, norms, side = MODELS[argv[5] if len(argv) > 5 else "fashion"]()
    model_tensors = {k: v for k, v in checkpoint.items() if not k.endswith(OPTIMIZER_SUFFIXES)}
    if len(model_tensors) == len(checkpoint):
        fail("the checkpoint holds no optimizer state (expected Adam's exp_avg / exp_avg_sq): %s" % sorted(checkpoint))

    initial = {k: v.clone() for k, v in net.state_dict().items()}
    # The tensors as kiln wrote them: num_batches_tracked is an F32 scalar there; load_state_dict copies it
    # (Tensor.copy_) into the module's int64 buffer, as it would for a user loading the file.
    result = net.load_state_dict(model_tensors, strict=True)  # raises on any missing / unexpected / misshaped key
    if result.missing_keys or result.unexpected_keys:
        fail("strict loading: missing %s, unexpected %s" % (result.missing_keys, result.unexpected_keys))
    if sorted(model_tensors) != sorted(initial):
        fail("names differ: checkpoint %s, torch %s" % (sorted(model_tensors), sorted(initial)))

    state = net.state_dict()
    for name in [n + suffix for n in norms for suffix in (".running_mean", ".running_var")]:
        if torch.equal(state[name], initial[name]):
            fail("%s still holds its initial value: the running statistics were not exercised" % name)
        if not torch.equal(state[name], model_tensors[name]):
            fail("%s was not loaded" % name)
    for name in [n + ".num_batches_tracked" for n in norms]:
        if state[name].dtype != torch.int64 or state[name].item() != steps:
            fail("%s is %r (%s), expected %d" % (name, state[name].item(), state[name].dtype, steps))

    net.eval()  # running statistics, no dropout: kiln's forward graph
    with torch.no_grad():
        logits = net(inputs["x"].reshape(-1, 1, side, side))
    write_safetensors(out, {"logits": logits})


def train_in_torch(argv):
    """The other direction: trains the Fashion-MNIST model in PyTorch (Adam, STEPS steps on TRAIN's x and y), writes
    its state_dict as safetensors to STATE (num_batches_tracked as int64, as torch keeps it) and the evaluation-mode
    logits of INPUTS["x"] to OUT, for kiln::cpu::function::load to reproduce."""
    train, _ = read_safetensors(argv[2])
    inputs, _ = read_safetensors(argv[3])
    steps, state_path, out = int(argv[4]), argv[5], argv[6]
    torch.manual_seed(5)
    net, _, side = MODELS["fashion"]()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(train["x"].reshape(-1, 1, side, side)), train["y"].long())
        loss.backward()
        opt.step()
    state = net.state_dict()
    if state["bn1.num_batches_tracked"].dtype != torch.int64:
        fail("expected torch to keep num_batches_tracked as int64")
    write_safetensors(state_path, state)
    net.eval()
    with torch.no_grad():
        logits = net(inputs["x"].reshape(-1, 1, side, side))
    write_safetensors(out, {"logits": logits})


if __name__ == "__main__":
    if sys.argv[1] == "--train-in-torch":
        train_in_torch(sys.argv)
    else:
        main(sys.argv)
