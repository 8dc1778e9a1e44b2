"""What comes out of a trained model: predictions to CSV, and exported files for serving."""
