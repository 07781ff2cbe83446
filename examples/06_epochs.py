"""Epochs: each epoch permutes the training samples and partitions them into batches, so every
sample is used once per epoch; early stopping ends training when validation stops improving."""
import riskmin

data = riskmin.load("lab1")
splits = riskmin.split(data, train=0.8, val=0.1, test=0.1, seed=0)
run = riskmin.fit("two_layer", splits, epochs=200, batch_size=32, optimizer="sgd", lr=0.05, patience=10, progress=False)
print(f"{run.summary['epochs_run']} epochs of {run.summary['steps'] // run.summary['epochs_run']} steps; "
      f"best epoch {run.best_epoch}; test loss {run.test['test_loss']:.4f}")
