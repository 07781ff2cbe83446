"""The same loop, unchanged, with the two-layer network ŷ = H2 σ(H1 x) as the parametrization."""
import riskmin

n_iters, batch_size, step_size, hidden = 2000, 32, 0.05, 32

data = riskmin.load("lab1")
model = riskmin.models.TwoLayerNN(data.n_features, data.n_targets, hidden=hidden)
run = riskmin.fit(model, data, sampling="random", max_steps=n_iters, batch_size=batch_size,
                  optimizer="sgd", lr=step_size, val=0, test=0, progress=False)
print(f"after {run.summary['steps']} steps the training loss is {run.summary['train_loss']:.4f}")
