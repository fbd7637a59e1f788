import FinetuneTool

finetuneMain(Array(CommandLine.arguments.dropFirst()))
