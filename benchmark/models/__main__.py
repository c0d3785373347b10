"""A summary of every registered model: ``python -m benchmark.models`` (weights read from a file
are left out: their architecture is listed under its random-init name)."""
from benchmark.models import build_model, list_models, model_spec, num_parameters

for n in list_models():
    if model_spec(n).pretrained:
        continue
    m = build_model(n, num_classes=10, in_channels=3, image_size=max(32, model_spec(n).min_image_size))
    print(f"{n:20s} {num_parameters(m):>12,d} params  feature_dim={m.feature_dim}")
