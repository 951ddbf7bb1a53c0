"""Fixed pieces of the generated PyTorch training code (see :mod:`._torch_training`)."""

from __future__ import annotations

LOSSES = {  # Keras's losses, one value per position
    "categorical_crossentropy": '''
def categorical_crossentropy(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras's categorical cross-entropy of probabilities (..., classes), renormalized and
    clipped to [EPSILON, 1 - EPSILON]: one value per position."""
    probs = (probs / probs.sum(dim=-1, keepdim=True)).clamp(EPSILON, 1 - EPSILON)
    return -(target * probs.log()).sum(dim=-1)
''',
    "sparse_categorical_crossentropy": '''
def sparse_categorical_crossentropy(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Keras's sparse categorical cross-entropy of probabilities (..., classes) and integer
    labels (...), renormalized and clipped to [EPSILON, 1 - EPSILON]."""
    probs = (probs / probs.sum(dim=-1, keepdim=True)).clamp(EPSILON, 1 - EPSILON)
    labels = labels.long().reshape(probs.shape[:-1]).unsqueeze(-1)
    return -probs.log().gather(-1, labels).squeeze(-1)
''',
    "binary_crossentropy": '''
def binary_crossentropy(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras's binary cross-entropy of probabilities clipped to [EPSILON, 1 - EPSILON],
    averaged over the last axis."""
    probs = probs.clamp(EPSILON, 1 - EPSILON)
    return -(target * probs.log() + (1 - target) * (1 - probs).log()).mean(dim=-1)
''',
    "categorical_crossentropy_from_logits": '''
def categorical_crossentropy_from_logits(
    logits: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Keras's CategoricalCrossentropy(from_logits=True): -sum(target * log_softmax)."""
    return -(target * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
''',
    "sparse_categorical_crossentropy_from_logits": '''
def sparse_categorical_crossentropy_from_logits(
    logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Keras's SparseCategoricalCrossentropy(from_logits=True): -log_softmax[label]."""
    labels = labels.long().reshape(logits.shape[:-1]).unsqueeze(-1)
    return -torch.log_softmax(logits, dim=-1).gather(-1, labels).squeeze(-1)
''',
    "binary_crossentropy_from_logits": '''
def binary_crossentropy_from_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras's BinaryCrossentropy(from_logits=True), averaged over the last axis."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=-1)
''',
    "mean_squared_error": """
def mean_squared_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (prediction - target).square().mean(dim=-1)
""",
    "mean_absolute_error": """
def mean_absolute_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (prediction - target).abs().mean(dim=-1)
""",
    "huber": '''
def huber(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras's Huber loss with delta 1, averaged over the last axis."""
    return F.huber_loss(prediction, target, reduction="none", delta=1.0).mean(dim=-1)
''',
}
ACCURACIES = {  # Keras's "accuracy" for each loss
    "categorical_accuracy": """
def categorical_accuracy(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (probs.argmax(dim=-1) == target.argmax(dim=-1)).float().mean()
""",
    "sparse_categorical_accuracy": """
def sparse_categorical_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (probs.argmax(dim=-1) == labels.reshape(probs.shape[:-1])).float().mean()
""",
    "binary_accuracy": """
def binary_accuracy(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((probs > 0.5).float() == target).float().mean()
""",
}

RMSPROP_DEFAULTS = {"rho": 0.9, "momentum": 0.0, "centered": False}
RMSPROP = '''class RMSprop(torch.optim.Optimizer):
    """Keras's RMSprop: v = rho v + (1 - rho) g^2 (centered: minus the squared average
    gradient), step = lr g / sqrt(v + epsilon), with momentum m = momentum m + step.

    torch's RMSprop adds epsilon outside the square root, which differs for small gradients.
    """

    def __init__(self, params, lr=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
        settings = {"rho": rho, "momentum": momentum, "epsilon": epsilon, "centered": centered}
        super().__init__(params, {"lr": lr, **settings})

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            rho = group["rho"]
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                grad, state = parameter.grad, self.state[parameter]
                if not state:
                    for slot in ("velocity", "average_gradient", "momentum"):
                        state[slot] = torch.zeros_like(parameter)
                state["velocity"].mul_(rho).add_(grad * grad, alpha=1 - rho)
                denominator = state["velocity"] + group["epsilon"]
                if group["centered"]:
                    average = state["average_gradient"].mul_(rho).add_(grad, alpha=1 - rho)
                    denominator = denominator - average * average
                increment = group["lr"] * grad / denominator.sqrt()
                if group["momentum"] > 0:
                    increment = state["momentum"].mul_(group["momentum"]).add_(increment)
                parameter.sub_(increment)'''

KERAS_EPSILON = '''class KerasEpsilon:
    """Keras's Adam step from torch's Adam kernels, fused into one pass over all weights on
    CPU and CUDA. Keras adds epsilon to sqrt(v), torch to sqrt(v / (1 - beta_2^t)): setting
    torch's epsilon to Keras's / sqrt(1 - beta_2^t) before each step makes the updates equal.
    Keras counts steps, not weights: t is the group's step count.
    """

    def __init__(self, params, eps=1e-7, **settings):
        params = list(params)
        fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
        super().__init__(params, eps=eps, fused=fused, **settings)
        for group in self.param_groups:
            group["keras_epsilon"], group["keras_step"] = eps, 0

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group["keras_step"] += 1
            correction = math.sqrt(1 - group["betas"][1] ** group["keras_step"])
            group["eps"] = group["keras_epsilon"] / correction
        return super().step(closure)'''

ADAM = '''class Adam(KerasEpsilon, torch.optim.Adam):
    """Keras's Adam: m = beta_1 m + (1 - beta_1) g, v = beta_2 v + (1 - beta_2) g^2
    (amsgrad: their running maximum), w -= alpha m / (sqrt(v) + epsilon), with
    alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)."""

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-7, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad)'''

ADAMW = '''class AdamW(KerasEpsilon, torch.optim.AdamW):
    """Keras's AdamW: each weight first decays, w *= 1 - lr weight_decay, then Adam's step."""

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-7, amsgrad=False,
                 weight_decay=0.004):
        super().__init__(params, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad,
                         weight_decay=weight_decay)'''

LOAD_WEIGHTS = '''def load_weights(model: nn.Module, path: Path) -> None:
    """Load the weights nodenet exported: torch layouts, keyed like model.state_dict()."""
    with np.load(path, allow_pickle=False) as arrays:
        model.load_state_dict({key: torch.from_numpy(arrays[key]) for key in arrays.files})'''

TO_DATASET = '''def to_dataset(inputs: dict, targets: dict) -> TensorDataset:
    """Tensors of the inputs (INPUTS order), then of the targets (OUTPUTS order)."""
    arrays = [inputs[k] for k in INPUTS] + [targets[k] for k in OUTPUTS]
    return TensorDataset(*(torch.as_tensor(a) for a in arrays))'''

SPLIT_TAIL = '''def split_tail(part: tuple[dict, dict], fraction: float):
    """Keras's validation_split: the last samples, taken before shuffling; the first
    floor(count * (1.0 - fraction)) train, as Keras counts them."""
    count = len(part[0][INPUTS[0]])
    cut = math.floor(count * (1.0 - fraction))
    head = tuple({k: v[:cut] for k, v in arrays.items()} for arrays in part)
    tail = tuple({k: v[cut:] for k, v in arrays.items()} for arrays in part)
    return head, tail'''

CLASS_WEIGHTS = '''def class_weights(target: torch.Tensor) -> torch.Tensor:
    """Keras's class_weight as one weight per sample, from one-hot or integer targets."""
    if target.ndim > 1 and target.shape[-1] > 1:
        labels = target.argmax(dim=-1)
    else:
        labels = target.reshape(len(target)).round().long()
    weights = torch.ones(len(target), device=target.device)
    for label, weight in CLASS_WEIGHT.items():
        weights[labels == label] = weight
    return weights'''


MAIN = '''def main() -> None:
    """Train on the project's data: one process, or one per device under torchrun
    (each process then takes BATCH_SIZE samples per step).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", choices=("cpu", "cuda"), default=default_device)
    trained = Path(__file__).with_name(Path(__file__).stem + "_trained.npz")
    parser.add_argument("--weights-out", type=Path, default=trained)
    args = parser.parse_args()

    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ  # torchrun
    if distributed:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    if args.device == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    torch.manual_seed(SEED)  # the same initial weights in every process

    data = load_data()
    model = build_model().to(device)
{load}    net = model
    if distributed:
        devices = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=devices)
    train, validation = data["train"], data.get("validation")
    if validation is None and VALIDATION_SPLIT:
        train, validation = split_tail(train, VALIDATION_SPLIT)
    train_set = to_dataset(*train)
    sampler = None
    if distributed:  # each process trains on its own shard
        sampler = DistributedSampler(train_set, shuffle=SHUFFLE, seed=SEED)
    shuffle = SHUFFLE and sampler is None
    train_loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=shuffle, sampler=sampler)
    validation_loader = None
    if validation is not None:
        validation_loader = DataLoader(to_dataset(*validation), batch_size=BATCH_SIZE)
    optimizer = make_optimizer(model)
    fit(net, optimizer, train_loader, validation_loader, args.epochs, device, rank)

    if "test" in data:
        test_loader = DataLoader(to_dataset(*data["test"]), batch_size=BATCH_SIZE)
        logs, _ = run_epoch(net, test_loader, device)
        if rank == 0:
            text = " - ".join(f"{key} {value:.4f}" for key, value in logs.items())
            print(f"Test - {text}")
    if rank == 0:
        state = {key: value.cpu().numpy() for key, value in model.state_dict().items()}
        np.savez(args.weights_out, **state)
        print(f"Trained weights: {args.weights_out}")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()'''
