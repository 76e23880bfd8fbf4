print("agent: not implemented yet")
