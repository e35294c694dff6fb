"""flow_vla's keypoint scene head (``scene_head=keypoints``): where the objects are, read
off the cameras as image points first, then lifted to the scene state.

The pooled head (``scene_head=pool``) regresses the object positions from the image
encoder's averaged features: a global map from pixels to table coordinates, which 100
demos (100 layouts) teach poorly - the demos' own frames are fitted to 0.3 cm, unseen
layouts stay 0.7 cm off near the gripper and 2 cm over a whole episode. This head splits the
problem where it generalises:

1. a small fully convolutional network per camera predicts, for every object of the scene
   state and for the end effector, a heat map over a grid of cells (1/4 of the image side)
   and an offset inside each cell; the expected position under the map's softmax is the
   object's image point, and a visibility logit says whether it is in view. Convolutions
   are translation-equivariant, so a cube learnt at one spot is found at any other: on
   unseen layouts the points are off by ~0.3 px, as on the training frames. Supervision:
   ``observation.keypoints.<camera>`` (``robolearn-collect --scene-state``), the simulator's
   projection of each object into each camera; training shifts each image by up to
   ``image_shift_px`` pixels and the labels with it.
2. a small MLP, shared by the objects (one-hot object id), lifts each object's points in
   every camera (and their offsets from the end effector's point) plus the arm's
   normalised state to that object's xyz in the scene state's normalised units. It reads
   the predicted points (detached, the shift undone), so it learns the points' real error.
   Scene dims past the objects' xyz triples (the drawer opening) come from the state.

Inference needs the cameras and the arm state only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robolearn.policies.encoders import random_shift

#: heat-map cells per image side = image_size // CELL_PX
CELL_PX = 4


def _block(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation),
                         nn.GroupNorm(8, c_out), nn.SiLU())


def shift_images(images: list[torch.Tensor], shift_px: int
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Move each image (B, 3, S, S) by its own random whole-pixel shift of up to
    ``shift_px`` (border padding) -> the images and how far their content moved, (B, C, 2)
    in u, v (fractions of the image side): a point at uv is now at uv + moved."""
    b, s = images[0].shape[0], images[0].shape[-1]
    shift = torch.randint(-shift_px, shift_px + 1, (b, len(images), 2), device=images[0].device)
    moved = [random_shift(im, shift_px, shift[:, c]) for c, im in enumerate(images)]
    # random_shift samples the input at x + shift: the content moves by -shift
    return moved, -shift.to(images[0].dtype) / s


class KeypointSceneHead(nn.Module):
    """Cameras (+ arm state) -> image points of ``n_objects`` objects and the end effector
    per camera -> the scene state estimate (B, scene_dim), normalised."""

    def __init__(self, n_cams: int, image_size: int, state_dim: int, scene_dim: int,
                 width: int = 64, hidden: int = 256):
        super().__init__()
        if image_size % CELL_PX:
            raise ValueError(f"the keypoint scene head needs an image size divisible by "
                             f"{CELL_PX}, got {image_size}")
        self.n_cams, self.grid = n_cams, image_size // CELL_PX
        self.n_objects = scene_dim // 3
        self.n_points = self.n_objects + 1  # the objects, then the end effector
        self.rest = scene_dim - 3 * self.n_objects
        p, w = self.n_points, width
        # stride 4 to the cell grid, then dilated 3x3s: a ~70 px receptive field that tells
        # a cube from the pad of the same colour, at the cost of a 24x24 grid's compute
        self.trunks = nn.ModuleList(nn.Sequential(
            _block(3, w // 2, 2), _block(w // 2, w // 2), _block(w // 2, w, 2), _block(w, w),
            _block(w, w, dilation=2), _block(w, w, dilation=4), _block(w, w, dilation=8))
            for _ in range(n_cams))
        self.heads = nn.ModuleList(nn.Conv2d(w, 3 * p, 1) for _ in range(n_cams))
        self.vis_bias = nn.Parameter(torch.full((n_cams, p), -5.0))
        g = self.grid
        ys, xs = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
        self.register_buffer("cells", torch.stack([(xs.flatten() + 0.5) / g,
                                                   (ys.flatten() + 0.5) / g], -1),
                             persistent=False)
        self.lift = nn.Sequential(nn.Linear(5 * n_cams + state_dim + self.n_objects, hidden),
                                  nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                  nn.Linear(hidden, 3))
        self.rest_head = nn.Linear(state_dim, self.rest) if self.rest else None

    def points(self, images: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Camera images (each (B, 3, S, S) in [-1, 1]) -> ``logits`` (B, C, P, G*G),
        ``uv`` (B, C, P, 2) in 0..1 of the image, ``vis`` (B, C, P) visibility logits."""
        logits, offsets = [], []
        for cam, im in enumerate(images):
            h = self.heads[cam](self.trunks[cam](im))  # (B, 3P, G, G)
            p = self.n_points
            logits.append(h[:, :p].flatten(2))
            offsets.append(torch.tanh(h[:, p:].flatten(2).view(h.shape[0], p, 2, -1))
                           .transpose(2, 3))
        logits, offsets = torch.stack(logits, 1), torch.stack(offsets, 1)
        pos = self.cells + offsets / self.grid  # each cell may move its point by a cell
        uv = (logits.softmax(-1)[..., None] * pos).sum(-2)
        return {"logits": logits, "uv": uv, "vis": logits.logsumexp(-1) + self.vis_bias}

    def lift_points(self, uv: torch.Tensor, vis: torch.Tensor, state: torch.Tensor
                    ) -> torch.Tensor:
        """Image points uv (B, C, P, 2), visibility probabilities (B, C, P) and the
        normalised arm state (B, D) -> the scene estimate (B, scene_dim), normalised."""
        b = uv.shape[0]
        ee = uv[:, :, -1:]  # the end effector's point in each camera
        per_obj = torch.cat([(uv[:, :, :-1] - 0.5) * 4.0, vis[:, :, :-1, None],
                             (uv[:, :, :-1] - ee) * 4.0], -1)  # (B, C, n_obj, 5)
        per_obj = per_obj.transpose(1, 2).flatten(2)  # (B, n_obj, 5C)
        ids = torch.eye(self.n_objects, device=uv.device, dtype=uv.dtype)
        x = torch.cat([per_obj, state[:, None].expand(-1, self.n_objects, -1),
                       ids[None].expand(b, -1, -1)], -1)
        xyz = self.lift(x).flatten(1)  # (B, 3 * n_obj)
        if self.rest_head is None:
            return xyz
        return torch.cat([xyz, self.rest_head(state)], -1)

    def forward(self, images: list[torch.Tensor], state: torch.Tensor,
                shift_px: int = 0) -> dict[str, torch.Tensor]:
        """-> ``scene`` (B, scene_dim) normalised, plus the points (``points``) and, with
        ``shift_px``, the pixel shift (B, C, 2) each image was moved by (labels follow)."""
        out = {}
        if shift_px > 0:
            images, out["shift_uv"] = shift_images(images, shift_px)
        pts = self.points(images)
        uv = pts["uv"].detach()
        if "shift_uv" in out:  # the lift learns from points as the unshifted image has them
            uv = uv - out["shift_uv"][:, :, None]
        out["scene"] = self.lift_points(uv, pts["vis"].detach().sigmoid(), state)
        out["points"] = pts
        return out

    def point_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Labels (B, C, P, 3) of u, v, in view: cross-entropy of the cell holding each
        visible point + L1 (in cells) of the expected point + 0.2 x visibility BCE."""
        labels = labels.clone()
        if "shift_uv" in out:
            labels[..., :2] = labels[..., :2] + out["shift_uv"][:, :, None]
            inside = ((labels[..., :2] >= 0) & (labels[..., :2] < 1)).all(-1)
            labels[..., 2] = labels[..., 2] * inside.to(labels.dtype)
        pts, g = out["points"], self.grid
        seen = labels[..., 2] > 0.5
        vis_loss = F.binary_cross_entropy_with_logits(pts["vis"], seen.to(pts["vis"].dtype))
        if not bool(seen.any()):
            return 0.2 * vis_loss
        col = (labels[..., 0] * g).long().clamp(0, g - 1)
        row = (labels[..., 1] * g).long().clamp(0, g - 1)
        ce = F.cross_entropy(pts["logits"][seen], (row * g + col)[seen])
        l1 = (pts["uv"] - labels[..., :2]).abs().sum(-1)[seen].mean() * g
        return ce + l1 + 0.2 * vis_loss
