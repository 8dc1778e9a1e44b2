"""Datasets and the LightningDataModule that feeds them to the Trainer."""
