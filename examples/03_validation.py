"""Validation: a tenth of the samples is set aside to watch for overfitting and keep the best model."""
import riskmin

data = riskmin.load("lab1")
run = riskmin.fit("two_layer", data, sampling="random", max_steps=2000, batch_size=32, val_every=100,
                  optimizer="sgd", lr=0.05, val=0.1, test=0, progress=False)
print(f"best validation loss {run.summary['val_loss']:.4f} at step {run.summary['best_step']}, weights restored")
for row in run.history[::5]:
    print(f"step {row['step']:>5}  train {row['loss']:.4f}  validation {row['val_loss']:.4f}")
