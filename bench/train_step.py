"""PyTorch peer of `wtn bench train-step`: ms per SGD step of cifar-resnet20 (option-A shortcuts) on a random batch.

Same model, batch, threads and step as the TorchSharp side: zero_grad, forward, cross-entropy, backward,
SGD(momentum 0.9, weight decay 5e-4) update, loss.item(). Run with /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.inplanes, self.planes, self.stride = inplanes, planes, stride

    def shortcut(self, x):
        if self.stride == 1 and self.inplanes == self.planes:
            return x
        s = x[:, :, ::self.stride, ::self.stride]
        extra = self.planes - self.inplanes
        return F.pad(s, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth=20, in_channels=3, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, inplanes = [], 16
        for s, planes in enumerate([16, 32, 64]):
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(inplanes, planes, 2 if s > 0 and b == 0 else 1))
                inplanes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.fc(h.mean((2, 3)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = CifarResNet(20, a.channels, a.classes).train()
    x = torch.randn(a.batch, a.channels, a.size, a.size)
    y = torch.randint(0, a.classes, (a.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    times, cpu = [], []
    faults0 = 0
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        c0 = time.process_time()
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / a.steps
    label = f"cifar-resnet20 {a.channels}x{a.size}x{a.size} batch {a.batch} threads {torch.get_num_threads()}"
    print(f"pytorch    bare step    {label}: median {statistics.median(times):.1f} ms/step "
          f"(mean {statistics.mean(times):.1f}, min {min(times):.1f}, {len(times)} steps), "
          f"cpu {statistics.median(cpu):.1f} ms/step, {faults:.0f} page faults/step (torch {torch.__version__})")


if __name__ == "__main__":
    main()
