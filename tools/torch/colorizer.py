"""The paper's network in PyTorch, with Chroma's tensor names, as an independent reference.

Used to generate golden tensors for Chroma's parity tests and to time PyTorch beside Chroma.
Needs only torch and numpy (Debian: python3-torch). Reads and writes safetensors with the
small codec in safetensors_io.py (no extra package).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled(c, width):
    # round half away from zero, as Chroma's ColorizerConfig.Scaled
    import math
    return max(1, int(math.floor(c * width + 0.5)))


class ConvBn(nn.Module):
    """conv kxk (padding k//2) -> batch norm -> ReLU; names: <conv>.weight/.bias, <bn>.*"""

    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Colorizer(nn.Module):
    def __init__(self, width=1.0, classes=205, fusion_kernel=1, input_size=224):
        super().__init__()
        c = lambda ch: scaled(ch, width)
        self.input_size = input_size
        m = input_size // 32
        self.low = [ConvBn(1, c(64), 3, 2), ConvBn(c(64), c(128), 3, 1), ConvBn(c(128), c(128), 3, 2),
                    ConvBn(c(128), c(256), 3, 1), ConvBn(c(256), c(256), 3, 2), ConvBn(c(256), c(512), 3, 1)]
        self.mid = [ConvBn(c(512), c(512), 3, 1), ConvBn(c(512), c(256), 3, 1)]
        self.glob = [ConvBn(c(512), c(512), 3, 2), ConvBn(c(512), c(512), 3, 1),
                     ConvBn(c(512), c(512), 3, 2), ConvBn(c(512), c(512), 3, 1)]
        self.gfc = [nn.Linear(c(512) * m * m, c(1024)), nn.Linear(c(1024), c(512)), nn.Linear(c(512), c(256))]
        self.gfcbn = [nn.BatchNorm1d(c(1024)), nn.BatchNorm1d(c(512)), nn.BatchNorm1d(c(256))]
        self.fusion = ConvBn(c(256) * 2, c(256), fusion_kernel, 1)
        self.color = [ConvBn(c(256), c(128), 3, 1), ConvBn(c(128), c(64), 3, 1), ConvBn(c(64), c(64), 3, 1),
                      ConvBn(c(64), c(32), 3, 1)]
        self.color_out = nn.Conv2d(c(32), 2, 3, 1, 1)
        self.cls_fc1 = nn.Linear(c(512), c(256))
        self.cls_bn1 = nn.BatchNorm1d(c(256))
        self.cls_fc2 = nn.Linear(c(256), classes)
        # register everything so .parameters() / .to() see it
        for i, l in enumerate(self.low + self.mid + self.glob + self.color + self.gfc + self.gfcbn):
            self.add_module(f"m{i}", l)

    def named_chroma_tensors(self):
        """(chroma name, tensor) for every parameter and running statistic."""
        out = []

        def convbn(prefix, conv_name, bn_name, mod):
            out.extend([(f"{prefix}.{conv_name}.weight", mod.conv.weight), (f"{prefix}.{conv_name}.bias", mod.conv.bias)])
            bn = mod.bn
            out.extend([(f"{prefix}.{bn_name}.weight", bn.weight), (f"{prefix}.{bn_name}.bias", bn.bias),
                        (f"{prefix}.{bn_name}.running_mean", bn.running_mean), (f"{prefix}.{bn_name}.running_var", bn.running_var)])

        for i, mod in enumerate(self.low): convbn("low", f"conv{i+1}", f"bn{i+1}", mod)
        for i, mod in enumerate(self.mid): convbn("mid", f"conv{i+1}", f"bn{i+1}", mod)
        for i, mod in enumerate(self.glob): convbn("global", f"conv{i+1}", f"bn{i+1}", mod)
        for i, (fc, bn) in enumerate(zip(self.gfc, self.gfcbn)):
            out.extend([(f"global.fc{i+1}.weight", fc.weight), (f"global.fc{i+1}.bias", fc.bias),
                        (f"global.fcbn{i+1}.weight", bn.weight), (f"global.fcbn{i+1}.bias", bn.bias),
                        (f"global.fcbn{i+1}.running_mean", bn.running_mean), (f"global.fcbn{i+1}.running_var", bn.running_var)])
        convbn("fusion", "conv", "bn", self.fusion)
        for i, mod in enumerate(self.color): convbn("color", f"conv{i+1}", f"bn{i+1}", mod)
        out.extend([("color.conv5.weight", self.color_out.weight), ("color.conv5.bias", self.color_out.bias)])
        out.extend([("class.fc1.weight", self.cls_fc1.weight), ("class.fc1.bias", self.cls_fc1.bias),
                    ("class.bn1.weight", self.cls_bn1.weight), ("class.bn1.bias", self.cls_bn1.bias),
                    ("class.bn1.running_mean", self.cls_bn1.running_mean), ("class.bn1.running_var", self.cls_bn1.running_var),
                    ("class.fc2.weight", self.cls_fc2.weight), ("class.fc2.bias", self.cls_fc2.bias)])
        return out

    def forward(self, local, glob=None):
        x = local
        for l in self.low: x = l(x)
        low_local = x
        if glob is None:
            low_global = low_local
        else:
            g = glob
            for l in self.low: g = l(g)
            low_global = g
        mid = low_local
        for l in self.mid: mid = l(mid)
        g = low_global
        for l in self.glob: g = l(g)
        g = g.flatten(1)
        g = F.relu(self.gfcbn[0](self.gfc[0](g)))
        g512 = F.relu(self.gfcbn[1](self.gfc[1](g)))
        g256 = F.relu(self.gfcbn[2](self.gfc[2](g512)))
        logits = self.cls_fc2(F.relu(self.cls_bn1(self.cls_fc1(g512))))
        tiled = g256[:, :, None, None].expand(-1, -1, mid.shape[2], mid.shape[3])
        f = self.fusion(torch.cat([mid, tiled], 1))
        c = self.color[0](f)
        c = F.interpolate(c, scale_factor=2, mode="nearest")
        c = self.color[2](self.color[1](c))
        c = F.interpolate(c, scale_factor=2, mode="nearest")
        ab = torch.sigmoid(self.color_out(self.color[3](c)))
        return ab, logits


def joint_loss(ab, logits, target_ab, labels, alpha=1.0 / 300):
    """MSE over all chrominance values + alpha * mean softmax cross-entropy."""
    return F.mse_loss(ab, target_ab) + alpha * F.cross_entropy(logits, labels)
