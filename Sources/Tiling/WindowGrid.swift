/// Placeholder: the window grid arrives with the `run` pipeline (issue 4).
public enum Tiling {}
