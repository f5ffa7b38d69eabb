"""examples/next_char.cpp's model, trained the same way in PyTorch: the peer its validation loss is compared with.

    /usr/bin/python3 bench/peers/next_char_torch.py [--words FILE] [--epochs N] [--seed S] [--kiln LOSS]

Same corpus (the word list lowercased, letters only, each word once, one in ten to validation by the FNV-1a hash
of the word), same examples (every position of a word, 3 characters of context, '.' for start and end), same
model (nn.Embedding(27, 10), nn.Linear(30, 200), tanh, nn.Linear(200, 27), PyTorch's default initialization),
same training (Adam, lr 0.003 and 0.0003 for the last quarter of the epochs, batch 256, shuffled every epoch,
float32). Prints the validation loss after every epoch; with --kiln LOSS, also whether kiln's final validation
loss is within 0.03 nats of this one (exit status 1 when not).
"""
import argparse
import math
import time

import torch


def fnv1a(word):
    h = 0xCBF29CE484222325
    for c in word.encode():
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_words(path):
    words, seen = [], set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            w = line.rstrip("\n").lower()
            if w and all("a" <= c <= "z" for c in w) and w not in seen:
                seen.add(w)
                words.append(w)
    return words


def examples(words):
    xs, ys = [], []
    for w in words:
        ctx = [0, 0, 0]
        for c in w + ".":
            code = 0 if c == "." else ord(c) - ord("a") + 1
            xs.append(list(ctx))
            ys.append(code)
            ctx = ctx[1:] + [code]
    return torch.tensor(xs), torch.tensor(ys)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--words", default="/usr/share/dict/words")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kiln", type=float, default=None)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    words = read_words(args.words)
    train_words = [w for w in words if fnv1a(w) % 10 != 0]
    val_words = [w for w in words if fnv1a(w) % 10 == 0]
    xt, yt = examples(train_words)
    xv, yv = examples(val_words)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: {len(train_words)} training words "
          f"({len(yt)} examples), {len(val_words)} validation words ({len(yv)} examples)")
    model = torch.nn.Sequential(torch.nn.Embedding(27, 10), torch.nn.Flatten(), torch.nn.Linear(30, 200), torch.nn.Tanh(),
                                torch.nn.Linear(200, 27))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    fast = max(1, args.epochs - args.epochs // 4)
    loss = float("nan")
    for epoch in range(1, args.epochs + 1):
        for g in opt.param_groups:
            g["lr"] = 3e-3 if epoch <= fast else 3e-4
        start = time.time()
        order = torch.randperm(len(yt))
        total = 0.0
        for b in range(0, len(yt), 256):
            idx = order[b:b + 256]
            out = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            out.backward()
            opt.step()
            total += out.item() * len(idx)
        with torch.no_grad():
            loss = torch.nn.functional.cross_entropy(model(xv), yv).item()
        print(f"epoch {epoch}: train loss {total / len(yt):.4f}, validation loss {loss:.4f} ({time.time() - start:.1f} s)")
    print(f"validation loss: {loss:.4f} nats per character (uniform guess: {math.log(27):.4f})")
    if args.kiln is not None:
        ok = abs(args.kiln - loss) <= 0.03
        print(f"kiln {args.kiln:.4f} against torch {loss:.4f}: difference {args.kiln - loss:+.4f} nats, "
              f"{'within' if ok else 'NOT within'} 0.03")
        raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
