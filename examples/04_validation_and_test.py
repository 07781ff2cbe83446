"""Validation and a test set: the test samples are touched once, after training, with the best weights."""
import riskmin

data = riskmin.load("lab1")
run = riskmin.fit("two_layer", data, sampling="random", max_steps=2000, batch_size=32, val_every=100,
                  optimizer="sgd", lr=0.05, val=0.1, test=0.1, progress=False)
train, test = run.summary["train_loss"], run.summary["test_loss"]
print(f"train loss {train:.4f}, test loss {test:.4f}, generalization gap {test - train:.4f}")
