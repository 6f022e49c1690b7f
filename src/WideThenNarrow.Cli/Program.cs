using WideThenNarrow.Cli;

return await WtnApp.RunAsync(args);
