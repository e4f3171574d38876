"""The GTSRB network's forward and input gradient in PyTorch on the CPU (oneDNN convolutions), to set beside
experiments/cpu_conv_variants.py: would a CPU convolution library beat XLA:CPU's kernels on this network?

Needs torch, which ncjax does not depend on: `python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch numpy`,
then `/tmp/tv/bin/python experiments/cpu_conv_torch.py`. Random weights, raw-scale random images, medians of 10
calls after 3 of warm-up.
"""
import statistics
import time

import torch


def network() -> torch.nn.Sequential:
    def block(cin: int, cout: int) -> list[torch.nn.Module]:
        return [torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(cout, cout, 3),
                torch.nn.ReLU(), torch.nn.MaxPool2d(2)]

    return torch.nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), torch.nn.Flatten(),
                               torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 43))


def main() -> None:
    torch.manual_seed(0)
    net = network()
    for p in net.parameters():
        p.requires_grad_(False)
    onednn = torch.backends.mkldnn.is_available()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, oneDNN {onednn}")
    for layout in (torch.contiguous_format, torch.channels_last):
        model = net.to(memory_format=layout)
        for batch in (32, 344):
            x = (torch.rand(batch, 3, 32, 32) * 255).contiguous(memory_format=layout)
            forward, gradient = [], []
            for _ in range(13):
                start = time.perf_counter()
                with torch.no_grad():
                    model(x).sum()
                forward.append(time.perf_counter() - start)
                images = x.clone().requires_grad_(True)
                start = time.perf_counter()
                model(images).sum().backward()
                gradient.append(time.perf_counter() - start)
            print(f"{str(layout):24s} batch {batch}: forward {statistics.median(forward[3:]) * 1e3:6.1f} ms, forward "
                  f"and input gradient {statistics.median(gradient[3:]) * 1e3:6.1f} ms", flush=True)


if __name__ == "__main__":
    main()
